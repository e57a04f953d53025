// The page and its stylesheet go beside the compiled scripts; the gateway serves dist/ as is.
const { copyFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');

const dist = join(__dirname, 'dist');
mkdirSync(dist, { recursive: true });
for (const name of ['index.html', 'style.css', 'favicon.svg'])
  copyFileSync(join(__dirname, 'src', name), join(dist, name));
