// Interop: the official JS SDK v3 drives bedrock-emulator's
// InvokeModelWithBidirectionalStream over HTTP/2 (cleartext, prior knowledge), with
// SigV4 on the request and on every input frame. Copied next to its node_modules by
// .ci/run-interop. Exits non-zero on any failure.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BedrockRuntimeClient, InvokeModelWithBidirectionalStreamCommand,
         ConverseCommand } from "@aws-sdk/client-bedrock-runtime";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const emulatorBin = process.env.BEDROCK_EMULATOR || path.join(root, "build/bin/bedrock-emulator");
const creds = { accessKeyId: "AKIDINTEROPJS", secretAccessKey: "interop-js-secret" };

function startEmulator() {
  return new Promise((resolve, reject) => {
    const child = spawn(emulatorBin, ["--port", "0", "--key", `${creds.accessKeyId}:${creds.secretAccessKey}`],
                        { stdio: ["ignore", "pipe", "inherit"] });
    const rl = createInterface({ input: child.stdout });
    rl.once("line", (line) => resolve({ child, port: Number(line) }));
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`emulator exited with ${code}`)));
  });
}

const enc = new TextEncoder(), dec = new TextDecoder();
let failures = 0;
function check(cond, what) {
  console.log(`${cond ? "ok" : "FAIL"} - ${what}`);
  if (!cond) failures++;
}

const { child, port } = await startEmulator();
try {
  const client = new BedrockRuntimeClient({
    region: "us-east-1", endpoint: `http://127.0.0.1:${port}`, credentials: creds,
  });

  // A plain call first, over the SDK's default HTTP/2 handler.
  const conv = await client.send(new ConverseCommand({
    modelId: "anthropic.claude-3-haiku-20240307-v1:0",
    messages: [{ role: "user", content: [{ text: "hello from the JS SDK" }] }],
  }));
  check(conv.output?.message?.role === "assistant" && typeof conv.usage?.inputTokens === "number",
        "Converse over HTTP/2 parses into its typed shape");

  const inputs = [
    { event: { sessionStart: { inferenceConfiguration: { maxTokens: 64 } } } },
    { event: { textInput: { content: "first frame" } } },
    { event: { textInput: { content: "second frame" } } },
    { event: { sessionEnd: {} } },
  ];
  async function* body() {
    for (const e of inputs) {
      yield { chunk: { bytes: enc.encode(JSON.stringify(e)) } };
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const res = await client.send(new InvokeModelWithBidirectionalStreamCommand({
    modelId: "amazon.nova-sonic-v1:0", body: body(),
  }));
  const outputs = [];
  for await (const ev of res.body) {
    if (ev.chunk?.bytes) outputs.push(dec.decode(ev.chunk.bytes));
  }
  check(outputs.length >= inputs.length, `bidirectional stream: ${outputs.length} output chunks for ${inputs.length} signed input frames`);
  check(outputs.some((o) => o.includes("first frame")) && outputs.some((o) => o.includes("second frame")),
        "bidirectional stream echoes what it received");

  // A wrong secret must be refused, and the SDK must parse the error into its type.
  const bad = new BedrockRuntimeClient({ region: "us-east-1", endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: "wrong" } });
  let name = "";
  try {
    await bad.send(new ConverseCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0",
      messages: [{ role: "user", content: [{ text: "x" }] }] }));
  } catch (e) { name = e.name; }
  check(name !== "" && name !== "Error", `bad signature surfaces as a typed error (${name})`);
} catch (e) {
  console.log(`FAIL - ${e.name}: ${e.message}`);
  failures++;
} finally {
  child.kill("SIGTERM");
}
console.log(failures ? `interop-js: ${failures} failed` : "interop-js: all passed");
process.exit(failures ? 1 : 0);
