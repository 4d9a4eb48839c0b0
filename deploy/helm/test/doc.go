// Package helmtest renders the correlatord Helm chart with Helm's own engine
// and checks the manifests; see chart_test.go.
package helmtest
