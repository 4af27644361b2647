// Opens N idle TCP connections to 127.0.0.1:PORT, keeps them for HOLD ms, and
// prints "open N" once they are all up.  Bounded in count and time.
import net from 'node:net';
const [port, n, hold] = process.argv.slice(2).map(Number);
const socks = [];
for (let i = 0; i < n; i++) {
  await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', resolve);
    s.on('error', reject);
    socks.push(s);
  });
}
console.log(`open ${socks.length}`);
setTimeout(() => { for (const s of socks) s.destroy(); process.exit(0); }, hold);
