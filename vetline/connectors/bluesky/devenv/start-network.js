// Starts a local AT Protocol network for Vetline's Bluesky connector tests: an in-memory PLC
// directory and one PDS on SQLite (no AppView, no Postgres), from the pinned
// @atproto/dev-env. Prints one JSON line on stdout once it is ready:
//   {"pds_url": ..., "plc_url": ..., "firehose_url": ..., "admin_password": ...}
// and keeps running until its stdin closes (the test session ending), then shuts down.
'use strict'

const { TestNetworkNoAppView } = require('@atproto/dev-env')
const { ADMIN_PASSWORD } = require('@atproto/dev-env/dist/const')

async function main() {
  // The dev-env logs through pino to stdout when LOG_ENABLED is set; keep stdout for the
  // JSON line the test harness reads.
  process.env.LOG_ENABLED = ''
  const network = await TestNetworkNoAppView.create({})
  const pdsUrl = network.pds.url
  const wsUrl = pdsUrl.replace(/^http/, 'ws')
  process.stdout.write(
    JSON.stringify({
      pds_url: pdsUrl,
      plc_url: network.plc.url,
      firehose_url: `${wsUrl}/xrpc/com.atproto.sync.subscribeRepos`,
      admin_password: ADMIN_PASSWORD,
    }) + '\n',
  )
  let closing = false
  const shutdown = async () => {
    if (closing) return
    closing = true
    try {
      await network.close()
    } finally {
      process.exit(0)
    }
  }
  process.stdin.on('end', shutdown)
  process.stdin.on('close', shutdown)
  process.stdin.resume()
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
}

main().catch((err) => {
  process.stderr.write(`dev-env failed to start: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
