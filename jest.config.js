// Two projects: "unit" needs nothing but Node; "integration" starts the real services (Kafka, Apicurio,
// ClickHouse) through deploy/local scripts, or uses the ones named by ECOS_TEST_* variables.
const transform = { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022" } }] };
module.exports = {
  projects: [
    {
      displayName: "unit",
      transform,
      testMatch: ["<rootDir>/test/**/*.test.ts"],
      testPathIgnorePatterns: ["/node_modules/", "<rootDir>/test/integration/"],
      testEnvironment: "node",
    },
    {
      displayName: "integration",
      transform,
      testMatch: ["<rootDir>/test/integration/**/*.test.ts"],
      testPathIgnorePatterns: ["/node_modules/"],
      testEnvironment: "node",
      globalSetup: "<rootDir>/test/integration/global-setup.ts",
      globalTeardown: "<rootDir>/test/integration/global-teardown.ts",
      // testTimeout is not a per-project option in jest; the setup file sets it for this project.
      setupFilesAfterEnv: ["<rootDir>/test/integration/jest-timeout.ts"],
    },
  ],
};
