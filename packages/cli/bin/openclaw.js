#!/usr/bin/env node
// Checked-in launcher: npm links a workspace bin only if its file exists at install time,
// which is before the `prepare` script builds dist/.
require('../dist/bin.js');
