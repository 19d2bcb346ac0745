// A Vite app that calls an oidc2 service from the browser: `pnpm example browser-vite`, then open
// the URL it prints. It serves until Ctrl-C.
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createServer } from 'vite'
import { startBackend } from './server.js'

const backend = await startBackend()
const root = fileURLToPath(new URL('.', import.meta.url))
const vite = await createServer({ root, appType: 'spa', server: { middlewareMode: true, hmr: { server: backend.server } } })
backend.servePage(vite.middlewares)
console.log(`open ${backend.pageUrl}/ in a browser; Ctrl-C stops the servers`)
await once(process, 'SIGINT')
await vite.close()
await backend.close()
