// The page: alice's order goes to the orders service encrypted end to end, and the page shows what
// the signed answer proved.
import { createClient } from '@oidc2/client'

interface Config {
  issuer: string
  service: string
  serviceUrl: string
}

const show = (id: string, text: string) => {
  document.getElementById(id)!.textContent = text
}

async function order(): Promise<void> {
  const config: Config = await (await fetch('/config.json')).json()
  const session: { subject: string; accessToken: string } = await (await fetch('/login', { method: 'POST' })).json()
  const api = createClient({
    serviceIssuers: [{ issuer: config.issuer }],
    expectedService: config.service,
    issuer: { url: config.issuer, credential: { accessToken: session.accessToken }, subject: session.subject },
    encryption: 'required',
  })
  const response = await api(`${config.serviceUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: 'book', quantity: 2 }),
  })
  const answer = await response.json()
  show('service', `${response.service.subject}, certified by ${response.service.issuer}`)
  show('caller', answer.caller)
  show('answer', `${response.status} ${JSON.stringify(answer.order)}`)
  show('encryption', response.encryption ? `${response.encryption.suite} ${response.encryption.mode}, body encrypted: ${response.encryption.bodyEncrypted}` : 'none')
}

order()
  .catch((error) => show('error', `${error.code ?? error.name}: ${error.message}`))
  .finally(() => (document.body.dataset.done = 'true'))
