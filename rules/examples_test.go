package rules

import (
	"strings"
	"testing"
)

// TestExampleRules runs the rules tests shipped with the example rule
// files, as `correlatord rules test` would.
func TestExampleRules(t *testing.T) {
	var out strings.Builder
	failed, err := RunTestFiles([]string{"../examples/rules/tests/rules-test.yml"}, &out)
	if err != nil || failed > 0 {
		t.Fatalf("failed=%d err=%v\n%s", failed, err, out.String())
	}
	t.Log(out.String())
}

func TestCheckExampleRules(t *testing.T) {
	var out strings.Builder
	if err := CheckFiles([]string{"../examples/rules/"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
}
