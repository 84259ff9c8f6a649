#!/usr/bin/env node
// Checked in (not built) so npm can link the command at install time; the CLI itself is built to dist/.
import '../dist/bin.js';
