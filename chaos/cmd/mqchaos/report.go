package main

import (
	"fmt"
	"strings"
	"time"
)

type reportMeta struct {
	mode     string
	seed     uint64
	versions []string
	took     time.Duration
	cmdline  string
	explicit bool // scenarios were chosen explicitly: a skip is a failure
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// renderReport prints the markdown table (to paste into the README's
// reliability section) and the details. It reports whether any scenario
// failed.
func renderReport(results []*result, m reportMeta) (string, bool) {
	var b strings.Builder
	failed := false
	cmd := "go run ./chaos/cmd/mqchaos"
	if m.cmdline != "" {
		cmd += " " + m.cmdline
	}
	fmt.Fprintf(&b, "\n## Reliability under faults (mqchaos, %s mode)\n\n", m.mode)
	fmt.Fprintf(&b, "`%s` on %s; brokers: %s; %s; seed %d; %s in all.\n\n",
		cmd, time.Now().Format("2006-01-02"), strings.Join(m.versions, ", "), goInfo(), m.seed, fmtDur(m.took))
	b.WriteString("| # | scenario | broker | produced | acked | consumed (unique) | lost | dup | order viol. | figures | result | time |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|---|---|--:|\n")
	for _, r := range results {
		status := "PASS"
		switch {
		case r.skipped != "":
			status = "SKIPPED (" + r.skipped + ")"
			if m.explicit {
				failed = true
			}
		case len(r.problems) > 0:
			status = fmt.Sprintf("**FAIL** (%d)", len(r.problems))
			failed = true
		}
		var figs []string
		for _, f := range r.figures {
			figs = append(figs, f.name+" "+f.value)
		}
		num := func(f func(*reportFigures) int) string {
			if r.rep == nil {
				return "–"
			}
			return fmt.Sprint(f(r.rep))
		}
		broker := r.broker
		if broker == "" {
			broker = "–"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.id, cell(r.title), broker,
			num(func(x *reportFigures) int { return x.produced }),
			num(func(x *reportFigures) int { return x.acked }),
			num(func(x *reportFigures) int { return x.consumedUnique }),
			num(func(x *reportFigures) int { return x.lost }),
			num(func(x *reportFigures) int { return x.dup }),
			num(func(x *reportFigures) int { return x.order }),
			cell(strings.Join(figs, "; ")), status, fmtDur(r.took))
	}
	b.WriteString("\nconsumed (unique): distinct messages a consumer's handler completed (scenario 7, which has no consumer: distinct messages in the topic).")
	b.WriteString(" lost: acknowledged by the broker but never handled (nor dead-lettered, scenario 6; nor in the topic, scenario 7).")
	b.WriteString(" dup: handlings of an already-handled offset (scenario 7: messages the producer wrote twice).")
	b.WriteString(" order viol.: a key's message handled after a later one of the same key within one process's assignment.\n")

	b.WriteString("\n### Details\n")
	for _, r := range results {
		fmt.Fprintf(&b, "\n**%d %s** (%s)", r.id, r.name, r.title)
		if r.skipped != "" {
			fmt.Fprintf(&b, ": skipped: %s\n", r.skipped)
			continue
		}
		if len(r.problems) == 0 {
			b.WriteString(": all requirements hold.\n")
		} else {
			b.WriteString(": requirements violated:\n")
			for _, p := range r.problems {
				fmt.Fprintf(&b, "- %s\n", p)
			}
		}
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- note: %s\n", n)
		}
		if len(r.examples) > 0 {
			b.WriteString("- examples:\n")
			for _, e := range r.examples {
				fmt.Fprintf(&b, "  - %s\n", e)
			}
		}
	}
	return b.String(), failed
}
