import { ProcessRuntime } from '../runtime/index.js';
import { runAgentContract } from './agent-contract.js';
import { AgentServer } from './agent-server.js';
import { LocalAgent } from './local-agent.js';
import { RemoteAgent } from './remote-agent.js';

const SECRET = 'contract-secret-0123456789abcdef';

runAgentContract('LocalAgent', async () => {
  const agent = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 500 }) });
  return { agent, destroy: () => agent.close({ graceMs: 200 }) };
});

runAgentContract('RemoteAgent over loopback (AgentServer → LocalAgent)', async () => {
  const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 500 }), host: 'h1' });
  const server = await AgentServer.start({ agent: local, secret: SECRET });
  const agent = new RemoteAgent({ host: 'h1', address: '127.0.0.1', url: server.url, secret: SECRET });
  await agent.info();
  return {
    agent,
    destroy: async () => {
      await agent.close({ leaveRunning: true });
      await server.close();
      await local.close({ graceMs: 200 });
    },
  };
});
