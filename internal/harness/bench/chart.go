package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Chart geometry.
const (
	chartW, chartH = 960, 460
	panelW, panelH = 380, 300
	panelY         = 78
	marginL        = 70
)

// series is one line of a chart panel.
type series struct {
	name   string
	color  string
	dashed bool
	pts    [][2]float64
}

// WriteChart writes an SVG image of a sweep: achieved throughput and
// latency percentiles (creation to JetStream ack) of the raw baseline and
// the bridge against the offered load. It has no dependencies: plain SVG
// with two panels (linear throughput, logarithmic latency).
func WriteChart(w io.Writer, sr *SweepReport) error {
	if sr == nil || len(sr.Points) == 0 {
		return fmt.Errorf("%w: WriteChart: no points", ErrConfig)
	}
	var thr, lat []series
	mk := func(name, color string, dashed bool) *series {
		return &series{name: name, color: color, dashed: dashed}
	}
	rawT, brT := mk("raw JetStream", "#1f77b4", false), mk("bridge", "#ff7f0e", false)
	rawP50, rawP99 := mk("raw p50", "#1f77b4", true), mk("raw p99", "#1f77b4", false)
	brP50, brP99 := mk("bridge p50", "#ff7f0e", true), mk("bridge p99", "#ff7f0e", false)
	maxX := 0.0
	for _, p := range sr.Points {
		x := p.Settings.Rate
		maxX = math.Max(maxX, x)
		if p.Raw != nil {
			rawT.pts = append(rawT.pts, [2]float64{x, p.Raw.MsgsPerSec})
			rawP50.pts = append(rawP50.pts, [2]float64{x, p.Raw.Latency.P50 / 1e3})
			rawP99.pts = append(rawP99.pts, [2]float64{x, p.Raw.Latency.P99 / 1e3})
		}
		if p.Bridge != nil {
			brT.pts = append(brT.pts, [2]float64{x, p.Bridge.MsgsPerSec})
			brP50.pts = append(brP50.pts, [2]float64{x, p.Bridge.Latency.P50 / 1e3})
			brP99.pts = append(brP99.pts, [2]float64{x, p.Bridge.Latency.P99 / 1e3})
		}
	}
	ideal := &series{name: "offered", color: "#999999", dashed: true, pts: [][2]float64{{0, 0}, {maxX, maxX}}}
	thr = append(thr, *ideal, *rawT, *brT)
	lat = append(lat, *rawP50, *rawP99, *brP50, *brP99)

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">mdbridge bench: bridge vs raw JetStream publishing, by offered load</text>`+"\n", marginL)
	e := sr.Env
	fmt.Fprintf(&b, `<text x="%d" y="42" fill="#555">%s</text>`+"\n", marginL,
		html.EscapeString(fmt.Sprintf("%s %s/%s, %d CPUs, GOMAXPROCS %d; NATS: %s", e.GoVersion, e.OS, e.Arch, e.NumCPU, e.GOMAXPROCS, e.NATS)))
	fmt.Fprintf(&b, `<text x="%d" y="58" fill="#555">%s</text>`+"\n", marginL, html.EscapeString(e.Layout))
	panel(&b, marginL, "throughput (acked msgs/s)", "offered load (msgs/s)", thr, maxX, false)
	panel(&b, marginL+panelW+110, "latency, creation → JetStream ack (ms)", "offered load (msgs/s)", lat, maxX, true)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// panel draws one chart panel at x0 with the series' legend below it.
func panel(b *strings.Builder, x0 int, title, xlabel string, ss []series, maxX float64, logY bool) {
	y0 := panelY
	minY, maxY := math.Inf(1), 0.0
	for _, s := range ss {
		for _, p := range s.pts {
			if logY && p[1] <= 0 {
				continue
			}
			minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
		}
	}
	if maxY <= 0 {
		maxY = 1
	}
	var yt []float64
	var ymap func(float64) float64
	if logY {
		lo := math.Pow(10, math.Floor(math.Log10(math.Max(minY, 1e-3))))
		hi := math.Pow(10, math.Ceil(math.Log10(maxY)))
		if hi <= lo {
			hi = lo * 10
		}
		for d := lo; d <= hi*1.0001; d *= 10 {
			yt = append(yt, d)
		}
		ymap = func(v float64) float64 {
			v = math.Max(v, lo)
			return float64(y0+panelH) - (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*panelH
		}
	} else {
		yt = niceTicks(maxY)
		top := yt[len(yt)-1]
		ymap = func(v float64) float64 { return float64(y0+panelH) - v/top*panelH }
	}
	xt := niceTicks(maxX)
	xr := xt[len(xt)-1]
	xmap := func(v float64) float64 { return float64(x0) + v/xr*panelW }

	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0-6, html.EscapeString(title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", x0, y0, panelW, panelH)
	for _, t := range yt {
		y := ymap(t)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x0+panelW, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-4, y+4, fmtTick(t))
	}
	for _, t := range xt {
		x := xmap(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, y0, x, y0+panelH)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, y0+panelH+16, fmtTick(t))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+panelW/2, y0+panelH+34, html.EscapeString(xlabel))
	for i, s := range ss {
		var pts []string
		for _, p := range s.pts {
			if logY && p[1] <= 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xmap(p[0]), ymap(p[1])))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		if len(pts) > 0 {
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash)
			if s.name != "offered" {
				for _, p := range pts {
					xy := strings.SplitN(p, ",", 2)
					fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], s.color)
				}
			}
		}
		lx, ly := x0+(i%2)*190, y0+panelH+52+(i/2)*16
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly-4, lx+24, ly-4, s.color, dash)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", lx+30, ly, html.EscapeString(s.name))
	}
}

// niceTicks returns 0 and round steps (1, 2 or 5 × 10^k) up to at least
// max, about five of them.
func niceTicks(max float64) []float64 {
	if max <= 0 {
		return []float64{0, 1}
	}
	raw := max / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	var t []float64
	for v := 0.0; ; v += step {
		t = append(t, v)
		if v >= max {
			break
		}
	}
	return t
}

// fmtTick formats an axis value compactly: 50k, 1.5M, 0.25.
func fmtTick(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
