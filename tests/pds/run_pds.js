// A PLC directory (in-memory) and the reference PDS on 127.0.0.1, for tests/test_pds_tier.py.
// Usage: node run_pds.js <plcPort> <pdsPort> <dataDir>; prints one JSON line when ready.
'use strict'
const path = require('path')
const crypto = require('crypto')

async function main() {
  const [plcPort, pdsPort, dataDir] = process.argv.slice(2)
  const plc = require('@did-plc/server')
  const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: Number(plcPort) })
  await plcServer.start()

  const env = {
    PDS_PORT: pdsPort,
    PDS_HOSTNAME: 'localhost',
    PDS_SERVICE_HANDLE_DOMAINS: '.test',
    PDS_DEV_MODE: 'true',
    PDS_INVITE_REQUIRED: 'false',
    PDS_DATA_DIRECTORY: dataDir,
    PDS_BLOBSTORE_DISK_LOCATION: path.join(dataDir, 'blobs'),
    PDS_JWT_SECRET: crypto.randomBytes(16).toString('hex'),
    PDS_ADMIN_PASSWORD: 'admin-pass',
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: crypto.randomBytes(32).toString('hex'),
    PDS_DID_PLC_URL: `http://127.0.0.1:${plcPort}`,
    PDS_CRAWLERS: '',
    LOG_ENABLED: 'false',
  }
  Object.assign(process.env, env)
  const pds = require('@atproto/pds')
  const cfg = pds.envToCfg(pds.readEnv())
  const secrets = pds.envToSecrets(pds.readEnv())
  const server = await pds.PDS.create(cfg, secrets)
  await server.start()
  console.log(JSON.stringify({ ready: true, plc: `http://127.0.0.1:${plcPort}`, pds: `http://127.0.0.1:${pdsPort}` }))
  const stop = async () => {
    await server.destroy()
    await plcServer.destroy()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
