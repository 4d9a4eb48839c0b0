package logtemplate

import "strings"

// render computes c's template text and the plan that maps each <*> to the
// words it covers. Adjacent variables are written as one <*> when only
// nothing, a '.', a ':' or a single space separates them: "<*>.<*>" is one
// dotted value, "<*> <*>" one value of several words. This is the
// normalisation the Loghub-2.0 evaluator applies to its ground truth
// (correct_template_general), and it means a parameter is one span of the
// line however many words it has.
func (p *Parser) render(c *cluster) {
	plan := c.plan[:0]
	lit := func(s string) {
		if len(plan) > 0 && !plan[len(plan)-1].isVar {
			plan[len(plan)-1].lit += s
			return
		}
		plan = append(plan, piece{lit: s})
	}
	variable := func(w int, k int16) {
		// Merge with the previous variable across a collapsible separator.
		if m := len(plan); m >= 2 && plan[m-1].isVar == false && plan[m-2].isVar && collapsible(plan[m-1].lit) {
			plan = plan[:m-1]
			plan[m-2].toW, plan[m-2].toPart = int32(w), k
			return
		} else if m >= 1 && plan[m-1].isVar {
			plan[m-1].toW, plan[m-1].toPart = int32(w), k
			return
		}
		plan = append(plan, piece{isVar: true, fromW: int32(w), toW: int32(w), fromPart: k, toPart: k})
	}
	for i := range c.words {
		if i > 0 {
			lit(" ")
		}
		w := &c.words[i]
		switch w.kind {
		case kWild:
			variable(i, -1)
			continue
		case kAffix:
			lit(w.pre)
			variable(i, -2)
			lit(w.suf)
			continue
		}
		var k int16
		for _, pt := range w.form {
			if pt.isVar {
				variable(i, k)
				k++
			} else {
				lit(pt.lit)
			}
		}
	}
	var b strings.Builder
	for _, pc := range plan {
		if pc.isVar {
			b.WriteString("<*>")
		} else {
			b.WriteString(pc.lit)
		}
	}
	c.plan = plan
	c.template = b.String()
}

func collapsible(sep string) bool {
	return sep == "" || sep == "." || sep == ":" || sep == " "
}

// extract appends to params the line's values at c's <*>, as sub-slices of
// line. The line matched c, so its words at c's non-wildcard positions have
// c's masked forms, and their k-th variable parts are c's.
func (p *Parser) extract(c *cluster, line []byte, params [][]byte) [][]byte {
	p.scanned = -1
	for _, pc := range c.plan {
		if !pc.isVar {
			continue
		}
		start := p.varBound(c, line, pc.fromW, pc.fromPart, true)
		end := p.varBound(c, line, pc.toW, pc.toPart, false)
		if start > end { // cannot happen for a line of c; never panic on it
			start = end
		}
		params = append(params, line[start:end])
	}
	return params
}

// varBound returns the offset in line where variable part k of word w
// starts (or ends); k < 0 means the whole word.
func (p *Parser) varBound(c *cluster, line []byte, w int32, k int16, start bool) int {
	lw := p.words[w]
	if k == -2 {
		// The inside of an affix word.
		tw := &c.words[w]
		if start {
			return int(lw.start) + len(tw.pre)
		}
		return int(lw.end) - len(tw.suf)
	}
	if k < 0 {
		if start {
			return int(lw.start)
		}
		return int(lw.end)
	}
	if p.scanned != w {
		// Both ends of a parameter usually lie in one word: scan it once.
		p.parts = p.parts[:0]
		scanWord(line[lw.start:lw.end], &p.parts)
		p.scanned = w
	}
	var seen int16
	for _, s := range p.parts {
		if !s.isVar {
			continue
		}
		if seen == k {
			if start {
				return int(lw.start + s.start)
			}
			return int(lw.start + s.end)
		}
		seen++
	}
	if start {
		return int(lw.start)
	}
	return int(lw.end)
}
