import { createHmac, createHash, createSecretKey, randomBytes } from 'node:crypto';
const salt = new Uint8Array(randomBytes(32)); const key = createSecretKey(salt); const data = JSON.stringify(['m1','81.2.69.1','Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36']);
for (const [name, f] of [['hmac-u8', () => createHmac('sha256', salt).update(data).digest()], ['hmac-key', () => createHmac('sha256', key).update(data).digest()], ['hash', () => createHash('sha256').update(salt).update(data).digest()]]) {
  const n = 200000; const t = performance.now(); for (let i = 0; i < n; i++) f(); console.log(name, ((performance.now() - t) * 1000 / n).toFixed(2), 'us');
}
