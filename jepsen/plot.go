package jepsen

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var outcomeColor = map[string]color.RGBA{
	TypeOK:   {R: 0x2e, G: 0x9e, B: 0x44, A: 0xff},
	TypeFail: {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	TypeInfo: {R: 0xff, G: 0x9f, B: 0x1c, A: 0xff},
}

var nemesisColor = map[string]color.NRGBA{
	NemesisPartition:  {R: 0x9e, G: 0xc5, B: 0xfe, A: 0x60},
	NemesisKill:       {R: 0xf5, G: 0x9e, B: 0x9e, A: 0x60},
	NemesisPause:      {R: 0xd8, G: 0xb4, B: 0xfe, A: 0x60},
	NemesisMembership: {R: 0xb7, G: 0xe4, B: 0xc7, A: 0x70},
}

// Plots writes latency.png (every operation's latency over time, coloured
// by outcome) and throughput.png (completions per second by outcome), both
// with the nemesis windows shaded, into dir.
func Plots(dir string, ops []Op, events []NemesisEvent) error {
	pairs, err := Pairs(ops)
	if err != nil {
		return err
	}
	if err := latencyPlot(filepath.Join(dir, "latency.png"), pairs, events); err != nil {
		return err
	}
	return throughputPlot(filepath.Join(dir, "throughput.png"), pairs, events)
}

const nsPerSec = 1e9

func latencyPlot(path string, pairs []Pair, events []NemesisEvent) error {
	p := plot.New()
	p.Title.Text = "Latency of every operation"
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	pts := map[string]plotter.XYs{}
	maxY, maxX := 1.0, 1.0
	for _, pr := range pairs {
		if pr.Complete.Index < 0 { // never completed
			continue
		}
		lat := float64(pr.Complete.Time-pr.Invoke.Time) / 1e6
		if lat < 0.05 {
			lat = 0.05
		}
		x := float64(pr.Invoke.Time) / nsPerSec
		pts[pr.Type()] = append(pts[pr.Type()], plotter.XY{X: x, Y: lat})
		maxY = math.Max(maxY, lat)
		maxX = math.Max(maxX, x)
	}
	shade(p, events, 0.05, maxY*1.5)
	for _, typ := range []string{TypeOK, TypeFail, TypeInfo} {
		if len(pts[typ]) == 0 {
			continue
		}
		s, err := plotter.NewScatter(pts[typ])
		if err != nil {
			return err
		}
		s.GlyphStyle.Color = outcomeColor[typ]
		s.GlyphStyle.Radius = vg.Points(1.2)
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("%s (%d)", typ, len(pts[typ])), s)
	}
	p.Y.Min, p.Y.Max = 0.05, maxY*1.5
	p.X.Min = 0
	p.Legend.Top = true
	return p.Save(30*vg.Centimeter, 15*vg.Centimeter, path)
}

func throughputPlot(path string, pairs []Pair, events []NemesisEvent) error {
	p := plot.New()
	p.Title.Text = "Throughput (completions per second)"
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = "ops/s"
	buckets := map[string]map[int]float64{}
	last := 0
	for _, pr := range pairs {
		if pr.Complete.Index < 0 {
			continue
		}
		s := int(pr.Complete.Time / int64(nsPerSec))
		if buckets[pr.Type()] == nil {
			buckets[pr.Type()] = map[int]float64{}
		}
		buckets[pr.Type()][s]++
		last = max(last, s)
	}
	maxY := 1.0
	lines := map[string]plotter.XYs{}
	for _, typ := range []string{TypeOK, TypeFail, TypeInfo} {
		var xy plotter.XYs
		for s := 0; s <= last; s++ {
			v := buckets[typ][s]
			xy = append(xy, plotter.XY{X: float64(s) + 0.5, Y: v})
			maxY = math.Max(maxY, v)
		}
		lines[typ] = xy
	}
	shade(p, events, 0, maxY*1.1)
	keys := make([]string, 0, len(lines))
	for k := range lines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, typ := range []string{TypeOK, TypeFail, TypeInfo} {
		l, err := plotter.NewLine(lines[typ])
		if err != nil {
			return err
		}
		l.LineStyle.Color = outcomeColor[typ]
		l.LineStyle.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(typ, l)
	}
	p.Y.Min, p.Y.Max = 0, maxY*1.1
	p.X.Min = 0
	p.Legend.Top = true
	return p.Save(30*vg.Centimeter, 12*vg.Centimeter, path)
}

// shade draws each nemesis window as a translucent band from y0 to y1,
// coloured by kind, with a legend entry per kind.
func shade(p *plot.Plot, events []NemesisEvent, y0, y1 float64) {
	seen := map[string]bool{}
	for _, ev := range events {
		end := ev.End
		if end == 0 {
			end = ev.Start
		}
		x0, x1 := float64(ev.Start)/nsPerSec, float64(end)/nsPerSec
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
		if err != nil {
			continue
		}
		c, ok := nemesisColor[ev.Kind]
		if !ok {
			c = color.NRGBA{R: 0xcc, G: 0xcc, B: 0xcc, A: 0x60}
		}
		poly.Color = c
		poly.LineStyle.Width = 0
		p.Add(poly)
		if !seen[ev.Kind] {
			seen[ev.Kind] = true
			p.Legend.Add("nemesis: "+ev.Kind, poly)
		}
	}
}
