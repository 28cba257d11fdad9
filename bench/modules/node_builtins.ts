/**
 * An otherwise empty script that loads the `node:` built-ins worker.ts's
 * static module graph uses, to price Deno's Node compatibility layer at
 * start-up.
 *
 * @module
 */

import "node:path";
import "node:url";
import "node:util";
import "node:v8";
