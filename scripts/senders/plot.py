"""Draws make bench-senders' CSV as an SVG: two log-log panels (wall time p50 and CPU
per invocation against measurements per invocation), one line per method.
    python3 plot.py senders.csv senders.svg
Plain SVG written by hand: no plotting library to install for one figure."""
import csv
import math
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
rtt = rows[0]["rtt_us"]
series = {}
for row in rows:
    series.setdefault(f'{row["language"]} {row["method"]}', []).append(row)
COLORS = {"php lpush-each": "#d62728", "python lpush-each": "#ff9896", "php pushgateway": "#7f7f7f",
          "php library": "#1f77b4", "python library": "#2ca02c"}
LABELS = {"php lpush-each": "PHP, LPUSH per measurement", "python lpush-each": "Python, LPUSH per measurement",
          "php pushgateway": "PHP, pre-aggregate + POST to Pushgateway", "php library": "PHP, clients/php (one LPUSH)",
          "python library": "Python, clients/python (one LPUSH)"}
W, H, PAD_L, PAD_B, PAD_T, PANEL_W, GAP = 980, 470, 70, 50, 40, 400, 90
xs = sorted({int(r["m"]) for r in rows})


def panel(x0, field, title):
    values = [float(r[field]) for r in rows if float(r[field]) > 0]
    lo, hi = 10 ** math.floor(math.log10(min(values))), 10 ** math.ceil(math.log10(max(values)))
    ph = H - PAD_B - PAD_T - 110
    def px(m): return x0 + (math.log10(m) - math.log10(xs[0])) / (math.log10(xs[-1]) - math.log10(xs[0])) * PANEL_W
    def py(v): return PAD_T + ph - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ph
    out = [f'<text x="{x0 + PANEL_W / 2}" y="{PAD_T - 14}" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<rect x="{x0}" y="{PAD_T}" width="{PANEL_W}" height="{ph}" fill="none" stroke="#444"/>']
    decade = lo
    while decade <= hi:
        y = py(decade)
        label = f"{decade:g} µs" if decade < 1000 else (f"{decade / 1000:g} ms" if decade < 1e6 else f"{decade / 1e6:g} s")
        out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
        decade *= 10
    for m in xs:
        out.append(f'<line x1="{px(m):.1f}" x2="{px(m):.1f}" y1="{PAD_T}" y2="{PAD_T + ph}" stroke="#eee"/>')
        out.append(f'<text x="{px(m):.1f}" y="{PAD_T + ph + 16}" text-anchor="middle" font-size="11">{m}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{PAD_T + ph + 34}" text-anchor="middle" font-size="12">'
               'measurements per invocation</text>')
    for name, points in series.items():
        color = COLORS.get(name, "#000")
        path = " ".join(f"{px(int(p['m'])):.1f},{py(float(p[field])):.1f}" for p in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [f'<circle cx="{px(int(p["m"])):.1f}" cy="{py(float(p[field])):.1f}" r="3" fill="{color}"/>' for p in points]
    return out


body = panel(PAD_L, "wall_p50_us", f"Wall time per invocation (p50), {rtt} µs round trip") + \
    panel(PAD_L + PANEL_W + GAP, "cpu_us", "Sender CPU per invocation")
for i, name in enumerate(series):
    x, y = PAD_L + (i % 2) * 440, H - 86 + (i // 2) * 20
    body.append(f'<line x1="{x}" x2="{x + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{COLORS.get(name, "#000")}" stroke-width="3"/>')
    body.append(f'<text x="{x + 30}" y="{y}" font-size="12">{LABELS.get(name, name)}</text>')
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
       'font-family="sans-serif" font-size="13">', f'<rect width="{W}" height="{H}" fill="white"/>'] + body + ["</svg>"]
open(sys.argv[2], "w").write("\n".join(svg) + "\n")
