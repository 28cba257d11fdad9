/**
 * Markdown tables: what every benchmark prints and appends to
 * bench/RESULTS.md.
 *
 * @module
 */

/** A table of figures with the notes that explain it. */
export interface Table {
  /** One line saying what was measured. */
  title: string;
  /** Column headers. */
  columns: string[];
  /** Rows of cells, as many as there are columns. */
  rows: string[][];
  /** Sentences printed under the table: what dominates, what is extrapolated. */
  notes?: string[];
}

function escapeCell(cell: string): string {
  return cell.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/**
 * Render a table as GitHub-flavoured Markdown, columns padded so it also
 * reads well in a terminal.
 *
 * @throws {RangeError} A row has another number of cells than there are columns.
 */
export function renderTable(table: Table): string {
  const { columns, rows } = table;
  for (const [i, row] of rows.entries()) {
    if (row.length !== columns.length) {
      throw new RangeError(
        `Cannot render table '${table.title}': row ${i} has ${row.length} cells, expected ${columns.length}`,
      );
    }
  }
  const cells = [columns, ...rows].map((row) => row.map(escapeCell));
  const widths = columns.map((_, c) => Math.max(3, ...cells.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`;
  const rule = `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`;
  const out = [`**${table.title}**`, "", line(cells[0]!), rule, ...cells.slice(1).map(line)];
  if (table.notes && table.notes.length > 0) {
    out.push("", ...table.notes.map((note) => `- ${note}`));
  }
  return out.join("\n") + "\n";
}
