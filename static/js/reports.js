// The Reports pages' chart: drawn by Chart.js (served from static/vendor/chartjs) from the
// figures the page passes with json_script (the Content-Security-Policy allows no inline script).
// The same figures are in the table under the chart.
(() => {
  const canvas = document.querySelector("canvas[data-chart]");
  const source = canvas && document.getElementById(canvas.dataset.chart);
  if (!canvas || !source || !window.Chart) return;
  const chart = JSON.parse(source.textContent);
  const colours = ["#1f6fb2", "#57a773", "#e0a030", "#9a6fb0"];
  const narrow = window.matchMedia("(max-width: 700px)").matches;
  new window.Chart(canvas, {
    type: chart.type,
    data: {
      labels: chart.labels,
      // A series may be drawn as a line over the bars (e.g. the channels a peak is held against).
      datasets: chart.series.map((series, n) => ({
        label: series.label,
        data: series.data,
        type: series.type || chart.type,
        backgroundColor: colours[n % colours.length],
        borderColor: colours[n % colours.length],
        borderWidth: series.type === "line" ? 2 : 0,
        pointRadius: series.type === "line" ? 0 : undefined,
        stepped: series.step ? "middle" : false,
        fill: false,
        // A line is a stack of its own (never added to the bars); a series may read the right axis.
        stack: series.type === "line" ? `line-${n}` : "bars",
        yAxisID: series.axis === "right" ? "y1" : "y",
      })),
    },
    options: {
      indexAxis: chart.horizontal ? "y" : "x",
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12, font: { size: narrow ? 11 : 12 } } },
        tooltip: {
          callbacks: {
            label: (item) => `${item.dataset.label}: ${item.parsed[chart.horizontal ? "x" : "y"].toLocaleString(undefined, { maximumFractionDigits: 2 })} ${chart.unit}`,
          },
        },
      },
      scales: {
        x: { stacked: chart.stacked, ticks: { autoSkip: true, maxRotation: 0, font: { size: narrow ? 10 : 12 } } },
        y: { stacked: chart.stacked, beginAtZero: true, ticks: { font: { size: narrow ? 10 : 12 } } },
        ...(chart.series.some((series) => series.axis === "right")
          ? { y1: { position: "right", stacked: chart.stacked, beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { font: { size: narrow ? 10 : 12 } } } }
          : {}),
      },
    },
  });
  canvas.dataset.drawn = "true";
})();
