/**
 * The environment that picks the proxy's forwarding engine in the suites that forward requests. `npm
 * test` runs those suites once more with SWITCHBOARD_TEST_ENGINE set to the engine that is not the
 * default, so both engines pass the same tests (package.json "test:engine").
 */
export function engineEnv(): NodeJS.ProcessEnv {
  const engine = process.env.SWITCHBOARD_TEST_ENGINE;
  return engine ? { SWITCHBOARD_PROXY_ENGINE: engine } : {};
}
