/**
 * An otherwise empty script that loads the `node:` built-ins worker.ts and
 * its task thread use, to price Deno's Node compatibility layer at start-up.
 *
 * @module
 */

import "node:crypto";
import "node:path";
import "node:stream";
import "node:url";
import "node:v8";
