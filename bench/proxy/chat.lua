-- The benchmark request: a ~200-byte chat completion body, POSTed on every
-- request.  BENCH_MODEL and the Portkey headers come from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
local model = os.getenv("BENCH_MODEL") or "chat"
local host = os.getenv("BENCH_PORTKEY_HOST")
if host then
  wrk.headers["x-portkey-provider"] = "openai"
  wrk.headers["x-portkey-custom-host"] = host
end
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are terse."},' ..
           '{"role":"user","content":"Say hello to the benchmark, please, in one short line of text."}],' ..
           '"max_tokens":16,"temperature":0.2}'
