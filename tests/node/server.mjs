// The proxy on fake-codex for a test file: PROXY_BIN and FAKE_CODEX name the binaries (the
// Makefile builds them), CODEX_BACKEND the backend (the Makefile runs the suite once for each).
// The server listens on an ephemeral loopback port, which it announces on stderr.
import { spawn } from "node:child_process";

/** Starts the proxy taking `apiKey`; resolves to its `/v1` base URL and a `stop`. */
export async function startProxy(apiKey) {
  const server = spawn(process.env.PROXY_BIN, [], {
    env: {
      PATH: process.env.PATH,
      HOST: "127.0.0.1",
      PORT: "0",
      API_KEYS: apiKey,
      CODEX_PATH: process.env.FAKE_CODEX,
      CODEX_BACKEND: process.env.CODEX_BACKEND ?? "exec",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const baseURL = await new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`no address announced: ${log}`)), 30000);
    server.stderr.on("data", (chunk) => {
      log += chunk;
      const match = log.match(/listening on (http:\/\/[0-9.:]+)/);
      if (match) {
        clearTimeout(timer);
        resolve(`${match[1]}/v1`);
      }
    });
  });
  return { baseURL, stop: () => server.kill("SIGTERM") };
}
