// Lint runs with type information so that `any` cannot leak across module boundaries.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.cache/', 'node_modules/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      // A switch over a union must name every member (or say `default`): a new operation cannot fall through.
      // The Kafka client library lives behind src/messaging/kafka/: nothing else imports it.
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@platformatic/kafka',
              message: 'Only src/messaging/kafka/ imports the Kafka client library.',
            },
            { name: 'kafkajs', message: 'The product has one Kafka client, @platformatic/kafka (README).' },
          ],
        },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
    },
  },
  {
    // The Kafka side itself: the client library, and never kafkajs.
    files: ['src/messaging/kafka/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'kafkajs', message: 'The product has one Kafka client, @platformatic/kafka (README).' },
          ],
        },
      ],
    },
  },
  {
    // Tests, benchmarks and scripts, which use kafkajs as an independent client.
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
);
