// ann-bench site: draws each page's charts from the JSON in the page, makes tables sortable
// and toggles every run on the recall/QPS charts. No network: plotly.min.js sits in assets/.
"use strict";

function drawCharts() {
  for (const div of document.querySelectorAll("div.chart[data-figure]")) {
    const fig = JSON.parse(document.getElementById(div.dataset.figure).textContent);
    Plotly.newPlot(div, fig.data, fig.layout, fig.config);
  }
}

function toggleEveryRun(box) {
  const div = document.getElementById(box.dataset.chart);
  const runs = div.data.map((t, i) => (t.meta && t.meta.kind === "runs" ? i : -1)).filter((i) => i >= 0);
  if (runs.length) Plotly.restyle(div, { visible: box.checked }, runs);
}

// A cell sorts by its data-value (a number; absent: a dash, sorted last) or else its text.
function sortKey(cell) {
  if (cell.dataset.value !== undefined) {
    return cell.dataset.value === "" ? null : parseFloat(cell.dataset.value);
  }
  return cell.textContent.trim().toLowerCase();
}

function sortTable(th) {
  const table = th.closest("table");
  const column = Array.from(th.parentNode.children).indexOf(th);
  const descending = th.dataset.order !== "desc";
  for (const other of th.parentNode.children) delete other.dataset.order;
  th.dataset.order = descending ? "desc" : "asc";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = sortKey(a.cells[column]), y = sortKey(b.cells[column]);
    if (x === null || y === null) return (x === null) - (y === null);
    const order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  for (const row of rows) body.appendChild(row);
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  for (const th of document.querySelectorAll("table.sortable th")) {
    th.addEventListener("click", () => sortTable(th));
    th.title = "click to sort";
  }
  for (const box of document.querySelectorAll("input.every-run")) {
    box.addEventListener("change", () => toggleEveryRun(box));
  }
});
