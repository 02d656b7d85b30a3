// A small line graph of the last samples (an SVG polyline): gaps where a figure was missing, the
// scale from `max` (a limit) or from the highest sample.
export function Sparkline({ values, max, label, width = 220, height = 48 }: { values: (number | null)[]; max?: number; label: string; width?: number; height?: number }) {
  const known = values.filter((v): v is number => v !== null);
  const top = Math.max(max ?? 0, ...known, 1);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const segments: string[] = [];
  let current: string[] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (current.length) segments.push(current.join(" "));
      current = [];
      return;
    }
    current.push(`${(i * step).toFixed(1)},${(height - (v / top) * (height - 2) - 1).toFixed(1)}`);
  });
  if (current.length) segments.push(current.join(" "));
  return (
    <svg className="xray-spark" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
      <rect x="0" y="0" width={width} height={height} className="xray-spark-bg" />
      {segments.map((points, i) => (
        <polyline key={i} points={points} className="xray-spark-line" />
      ))}
    </svg>
  );
}
