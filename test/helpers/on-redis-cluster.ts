// Jest setup file of the `integration-redis-cluster` project: `startCluster` then runs its replicas
// and workers on a Redis Cluster (test/helpers/redis-cluster.ts) instead of one Redis.
process.env.OPENCLAW_TEST_REDIS = 'cluster';
