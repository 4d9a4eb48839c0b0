package logtemplate

import (
	"errors"
	"fmt"
)

// Config tunes the parser. One configuration serves every log source: the
// masking rules are built in (see the package documentation) rather than
// given as per-source regular expressions, so adding a source needs no
// configuration.
//
// The zero value is not ready to use: call SetDefaults, then Validate. The
// yaml tags let the daemon embed it in its configuration file later.
type Config struct {
	// PrefixTokens is how many leading words route a line through the prefix
	// tree below the word-count level (Drain's depth minus 2). More words
	// split templates earlier and make lookups cheaper, but a variable word
	// that the masking does not recognise in those positions splits one
	// template into many. Default 2, range 1 to 8.
	PrefixTokens int `yaml:"prefix_tokens"`
	// SimilarityThreshold is the least fraction of a line's words that must
	// equal a template's constant words for the line to join that template
	// (Drain's st). Words that are variables on both sides count as equal.
	// Default 0.6, range (0, 1]; on the Loghub samples anything from 0.5 to
	// 0.8 scores within 0.01 of the best.
	SimilarityThreshold float64 `yaml:"similarity_threshold"`
	// MinVariants is how many different constant words one position of a
	// template must show before it is taken as a variable. Until then a line
	// that differs from the most similar template in one constant word starts
	// a sibling template, so "VM Started" and "VM Paused" stay two events while
	// a position with many values (user or host names without digits) still
	// becomes <*> once MinVariants siblings exist, which are then merged.
	// Drain generalises at the first difference (2). Default 4, at least 2.
	MinVariants int `yaml:"min_variants"`
	// MaxChildren bounds the children of one prefix-tree node. A word seen
	// when a node is full is routed to the node's wildcard child instead, so a
	// variable word the masking missed cannot grow the tree without bound.
	// Default 100, at least 2.
	MaxChildren int `yaml:"max_children"`
	// MaxTemplates bounds the templates held. When a new template would
	// exceed it, the least recently matched template is evicted (LRU, as in
	// Drain3): its id is forgotten, and a later line of that shape starts a
	// new template, whose id is derived from its first line as usual (so it
	// often comes back with the same id). Default 50000.
	MaxTemplates int `yaml:"max_templates"`
	// MaxWords bounds the words of one line that are compared; the rest of a
	// longer line is kept as part of its last word, so one pathological line
	// cannot make a template of unbounded size. Default 256, at least 8.
	MaxWords int `yaml:"max_words"`
	// MaxAliases bounds how many ids of merged-away templates one template
	// keeps answering to (see Parser.Resolve). The oldest alias is dropped
	// first. Default 64; -1 keeps none.
	MaxAliases int `yaml:"max_aliases"`
}

// SetDefaults fills the zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.PrefixTokens == 0 {
		c.PrefixTokens = 2
	}
	if c.SimilarityThreshold == 0 {
		c.SimilarityThreshold = 0.6
	}
	if c.MinVariants == 0 {
		c.MinVariants = 4
	}
	if c.MaxChildren == 0 {
		c.MaxChildren = 100
	}
	if c.MaxTemplates == 0 {
		c.MaxTemplates = 50000
	}
	if c.MaxWords == 0 {
		c.MaxWords = 256
	}
	if c.MaxAliases == 0 {
		c.MaxAliases = 64
	}
}

// Validate reports every field out of range, each error naming the field
// (with its yaml name) and the accepted range.
func (c *Config) Validate() error {
	var errs []error
	if c.PrefixTokens < 1 || c.PrefixTokens > 8 {
		errs = append(errs, fmt.Errorf("prefix_tokens: %d is out of range, want 1 to 8", c.PrefixTokens))
	}
	// The negated form also rejects NaN.
	if !(c.SimilarityThreshold > 0 && c.SimilarityThreshold <= 1) {
		errs = append(errs, fmt.Errorf("similarity_threshold: %v is out of range, want more than 0 and at most 1", c.SimilarityThreshold))
	}
	if c.MinVariants < 2 {
		errs = append(errs, fmt.Errorf("min_variants: %d is too small, want at least 2", c.MinVariants))
	}
	if c.MaxChildren < 2 {
		errs = append(errs, fmt.Errorf("max_children: %d is too small, want at least 2", c.MaxChildren))
	}
	if c.MaxTemplates < 1 {
		errs = append(errs, fmt.Errorf("max_templates: %d is too small, want at least 1", c.MaxTemplates))
	}
	if c.MaxWords < 8 {
		errs = append(errs, fmt.Errorf("max_words: %d is too small, want at least 8", c.MaxWords))
	}
	if c.MaxAliases < -1 {
		errs = append(errs, fmt.Errorf("max_aliases: %d is out of range, want -1 (none) or more", c.MaxAliases))
	}
	return errors.Join(errs...)
}
