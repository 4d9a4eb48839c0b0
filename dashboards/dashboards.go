package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/correlatord/correlatord/analytics"
)

// The data sources the dashboards' datasource variables select by
// default: deploy/grafana/provisioning/datasources/datasources.yaml
// provisions them with these uids.
const (
	DefaultPrometheusUID = "correlator-prometheus"
	DefaultClickHouseUID = "correlator-clickhouse"
)

// Options parameterise the dashboards.
type Options struct {
	// Database is the ClickHouse database the SQL panels read (the
	// daemon's clickhouse.database). Default analytics.DefaultDatabase.
	Database string
}

// Kind is the language of a query.
type Kind string

// The kinds of queries.
const (
	// KindPromQL is a PromQL expression of a Prometheus panel target.
	KindPromQL Kind = "promql"
	// KindClickHouse is the SQL of a ClickHouse panel target or variable,
	// with Grafana variables and grafana-clickhouse-datasource macros.
	KindClickHouse Kind = "clickhouse"
	// KindLabelValues is a Prometheus variable query,
	// label_values(metric, label).
	KindLabelValues Kind = "label_values"
)

// Query is one query of a dashboard: a panel target or a variable's query.
type Query struct {
	Dashboard string // the dashboard's uid
	Panel     string // the panel's title, or "variable NAME"
	RefID     string // the target's refId ("" for a variable)
	Kind      Kind
	// Expr is the query as stored in the dashboard, with Grafana variables
	// ($service, ${site:singlequote}, $__rate_interval...) and macros.
	Expr string
}

// Built is one generated dashboard.
type Built struct {
	UID   string
	Title string
	// JSON is the dashboard model, as provisioned from
	// deploy/grafana/dashboards/UID.json.
	JSON []byte
	// Queries are the queries of the dashboard, read back from JSON: every
	// target of every panel, then the variables' queries.
	Queries []Query
}

// FileName is the name of the dashboard's file in the provisioned folder.
func (b Built) FileName() string { return b.UID + ".json" }

// Dashboards builds every dashboard.
func Dashboards(o Options) ([]Built, error) {
	if o.Database == "" {
		o.Database = analytics.DefaultDatabase
	}
	defs := []struct {
		uid, title, desc string
		build            func(*board, Options) error
	}{
		{"correlator-operations", "correlatord / Operations overview",
			"Event flow, noise reduction, open incidents and SLA breaches.", operations},
		{"correlator-incident-kpis", "correlatord / Incident KPIs",
			"MTTA and MTTR by priority and service, SLA compliance, escalations and reopen rate.", incidentKPIs},
		{"correlator-problems", "correlatord / Problem management",
			"Recurring root causes, problem candidates, known-error matches, change-induced incidents and availability per service.", problems},
		{"correlator-pipeline", "correlatord / Pipeline health",
			"The daemon itself: ingest, Kafka lag, processing latency, ClickHouse writes, dead letters and reloads.", pipeline},
	}
	out := make([]Built, 0, len(defs))
	for _, d := range defs {
		bd := newBoard(d.uid, d.title, d.desc, o)
		if err := d.build(bd, o); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		dash, err := bd.b.Build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		js, err := marshal(dash)
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		qs, err := QueriesOf(js)
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		out = append(out, Built{UID: d.uid, Title: d.title, JSON: js, Queries: qs})
	}
	return out, nil
}

// marshal renders a dashboard as indented JSON with a final newline, the
// form of the provisioned files.
func marshal(d dashboard.Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & of PromQL and SQL readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// The data source references of panels and variables: the datasource
// variables, so that the dashboards also work where the data sources
// have other uids.
var (
	promRef       = dsRef("prometheus", "${prometheus}")
	clickHouseRef = dsRef(ClickHousePluginID, "${clickhouse}")
)

func dsRef(typ, uid string) common.DataSourceRef { return common.DataSourceRef{Type: &typ, Uid: &uid} }

func strp(s string) *string { return &s }

// allOption is the current value "All" of a multi-value variable.
func allOption() dashboard.VariableOption {
	return dashboard.VariableOption{
		Text:  dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
		Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
	}
}

// The filter variables. Each is multi-value with "All", whose value for
// PromQL is the regex .* (so label=~"$v" matches every value, none
// included); SQL panels test them with $__conditionalAll, which drops
// the condition when All is selected.
const (
	varService  = "service"
	varPriority = "priority"
	varSite     = "site"
)

// variables returns the dashboard variables: the two data sources, then
// service, priority and site.
func variables(o Options) []cog.Builder[dashboard.VariableModel] {
	return []cog.Builder[dashboard.VariableModel]{
		dashboard.NewDatasourceVariableBuilder("prometheus").Label("Prometheus").Type("prometheus").
			Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: strp("Prometheus")},
				Value: dashboard.StringOrArrayOfString{String: strp(DefaultPrometheusUID)}}),
		dashboard.NewDatasourceVariableBuilder("clickhouse").Label("ClickHouse").Type(ClickHousePluginID).
			Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: strp("ClickHouse")},
				Value: dashboard.StringOrArrayOfString{String: strp(DefaultClickHouseUID)}}),
		// The services incidents were opened for (first impacted service;
		// "none" for incidents impacting no service).
		dashboard.NewQueryVariableBuilder(varService).Label("Service").Datasource(promRef).
			Description("Business service (first impacted service of an incident; none: no service impacted).").
			Query(dashboard.StringOrMap{String: strp(serviceVariableQuery)}).Definition(serviceVariableQuery).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true).AllValue(".*").Current(allOption()),
		dashboard.NewCustomVariableBuilder(varPriority).Label("Priority").
			Values(dashboard.StringOrMap{String: strp("P1,P2,P3,P4,P5")}).
			Multi(true).IncludeAll(true).AllValue(".*").Current(allOption()),
		// Sites are a CI attribute of the CMDB (attributes.site), stored
		// with every topology snapshot; Prometheus metrics carry no site,
		// so only the ClickHouse panels filter on it.
		dashboard.NewQueryVariableBuilder(varSite).Label("Site").Datasource(clickHouseRef).
			Description("CMDB site (CI attribute site): filters the ClickHouse panels by the sites of the incidents' CIs and the events' site label.").
			Query(dashboard.StringOrMap{String: strp(siteVariableSQL(o.Database))}).Definition(siteVariableSQL(o.Database)).
			Refresh(dashboard.VariableRefreshOnDashboardLoad).Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true).AllValue(".*").Current(allOption()),
	}
}

const serviceVariableQuery = "label_values(correlator_incidents_created_total, service)"

// board lays a dashboard out: panels in rows 24 units wide, numbered in
// order.
type board struct {
	b      *dashboard.DashboardBuilder
	nextID uint32
}

func newBoard(uid, title, desc string, o Options) *board {
	b := dashboard.NewDashboardBuilder(title).Uid(uid).Description(desc).
		Tags([]string{"correlatord"}).Editable().Refresh("1m").Time("now-6h", "now").Timezone("utc").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).Variables(variables(o))
	// Links to the other dashboards, above the panels (the SDK's default
	// placement would hide them in the controls menu of Grafana 12).
	link, err := dashboard.NewDashboardLinkBuilder("correlatord").Type(dashboard.DashboardLinkTypeDashboards).
		Tags([]string{"correlatord"}).AsDropdown(true).IncludeVars(true).KeepTime(true).Build()
	link.Placement = nil
	b.Link(built[dashboard.DashboardLink]{link, err})
	return &board{b: b}
}

// built is a value already built, as a cog.Builder.
type built[T any] struct {
	v   T
	err error
}

func (b built[T]) Build() (T, error) { return b.v, b.err }

func (d *board) id() uint32 {
	d.nextID++
	return d.nextID
}

func (d *board) row(title string) {
	d.b.WithRow(dashboard.NewRowBuilder(title).Id(d.id()))
}

// size is a panel's width and height in grid units.
type size struct{ w, h uint32 }

// target is one query of a panel.
type target struct {
	kind   Kind
	expr   string
	legend string // PromQL: the legend format
	table  bool   // ClickHouse: table format; PromQL: table format (instant)
}

func prom(expr, legend string) target { return target{kind: KindPromQL, expr: expr, legend: legend} }

// trend is a ClickHouse target from an analytics trend query.
func trend(q analytics.TrendQuery, db string) target {
	return target{kind: KindClickHouse, expr: q.For(db), table: q.Format == analytics.FormatTable}
}

// builders turns targets into the SDK's query builders, with refIds A, B,
// ... Prometheus targets of instant panels (stat, bar gauge, table) are
// instant queries.
func builders(ts []target, instant bool) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(ts))
	for i, t := range ts {
		ref := string(rune('A' + i))
		switch t.kind {
		case KindPromQL:
			q := prometheus.NewDataqueryBuilder().Datasource(promRef).RefId(ref).Expr(t.expr)
			if t.legend != "" {
				q.LegendFormat(t.legend)
			}
			if t.table {
				q.Format(prometheus.PromQueryFormatTable)
			}
			if instant || t.table {
				q.Instant()
			} else {
				q.Range()
			}
			out[i] = q
		default:
			out[i] = newClickHouseQuery(t.expr, t.table).refID(ref)
		}
	}
	return out
}

func datasourceOf(ts []target) common.DataSourceRef {
	if len(ts) > 0 && ts[0].kind == KindClickHouse {
		return clickHouseRef
	}
	return promRef
}

// timeseries adds a time series panel.
func (d *board) timeseries(title, desc, unit string, sz size, ts ...target) {
	p := timeseries.NewPanelBuilder().Id(d.id()).Title(title).Description(desc).Unit(unit).
		Datasource(datasourceOf(ts)).Targets(builders(ts, false)).Span(sz.w).Height(sz.h).
		FillOpacity(10).LineWidth(1).SpanNulls(common.BoolOrFloat64{Bool: boolp(false)}).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).ShowLegend(true))
	d.b.WithPanel(p)
}

// bars adds a time series panel with stacked bars (counts per bucket).
func (d *board) bars(title, desc, unit string, sz size, ts ...target) {
	p := timeseries.NewPanelBuilder().Id(d.id()).Title(title).Description(desc).Unit(unit).
		Datasource(datasourceOf(ts)).Targets(builders(ts, false)).Span(sz.w).Height(sz.h).
		DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).ShowLegend(true))
	d.b.WithPanel(p)
}

// stat adds a single-value panel, reduced to the last value.
func (d *board) stat(title, desc, unit string, sz size, ts ...target) {
	p := stat.NewPanelBuilder().Id(d.id()).Title(title).Description(desc).Unit(unit).
		Datasource(datasourceOf(ts)).Targets(builders(ts, true)).Span(sz.w).Height(sz.h).
		GraphMode(common.BigValueGraphModeNone).ColorMode(common.BigValueColorModeValue).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false))
	d.b.WithPanel(p)
}

// bargauge adds a bar gauge: one bar per series (PromQL) or per row
// (SQL).
func (d *board) bargauge(title, desc, unit string, sz size, ts ...target) {
	values := len(ts) > 0 && ts[0].kind == KindClickHouse
	p := bargauge.NewPanelBuilder().Id(d.id()).Title(title).Description(desc).Unit(unit).
		Datasource(datasourceOf(ts)).Targets(builders(ts, true)).Span(sz.w).Height(sz.h).
		Orientation(common.VizOrientationHorizontal).DisplayMode(common.BarGaugeDisplayModeGradient).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(values))
	d.b.WithPanel(p)
}

// table adds a table panel.
func (d *board) table(title, desc, unit string, sz size, ts ...target) {
	for i := range ts {
		ts[i].table = true
	}
	p := table.NewPanelBuilder().Id(d.id()).Title(title).Description(desc).Unit(unit).
		Datasource(datasourceOf(ts)).Targets(builders(ts, true)).Span(sz.w).Height(sz.h)
	d.b.WithPanel(p)
}

func boolp(b bool) *bool { return &b }

// QueriesOf reads the queries of a dashboard's JSON model: the targets of
// every panel (rows' collapsed panels included), then the query
// variables. Data source variables are not queries.
func QueriesOf(js []byte) ([]Query, error) {
	type targetJSON struct {
		RefID      string `json:"refId"`
		Datasource struct {
			Type string `json:"type"`
		} `json:"datasource"`
		Expr   string `json:"expr"`
		RawSQL string `json:"rawSql"`
	}
	type panelJSON struct {
		Title   string       `json:"title"`
		Type    string       `json:"type"`
		Targets []targetJSON `json:"targets"`
		Panels  []panelJSON  `json:"panels"`
	}
	var d struct {
		UID        string      `json:"uid"`
		Panels     []panelJSON `json:"panels"`
		Templating struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Query      json.RawMessage `json:"query"`
				Datasource struct {
					Type string `json:"type"`
				} `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(js, &d); err != nil {
		return nil, err
	}
	var out []Query
	var walk func([]panelJSON) error
	walk = func(ps []panelJSON) error {
		for _, p := range ps {
			for _, t := range p.Targets {
				q := Query{Dashboard: d.UID, Panel: p.Title, RefID: t.RefID}
				switch t.Datasource.Type {
				case "prometheus":
					q.Kind, q.Expr = KindPromQL, t.Expr
				case ClickHousePluginID:
					q.Kind, q.Expr = KindClickHouse, t.RawSQL
				default:
					return fmt.Errorf("panel %q target %s: unknown data source type %q", p.Title, t.RefID, t.Datasource.Type)
				}
				out = append(out, q)
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var expr string
		if err := json.Unmarshal(v.Query, &expr); err != nil {
			return nil, fmt.Errorf("variable %s: query is not a string: %w", v.Name, err)
		}
		q := Query{Dashboard: d.UID, Panel: "variable " + v.Name, Expr: expr}
		switch v.Datasource.Type {
		case "prometheus":
			q.Kind = KindLabelValues
		case ClickHousePluginID:
			q.Kind = KindClickHouse
		default:
			return nil, fmt.Errorf("variable %s: unknown data source type %q", v.Name, v.Datasource.Type)
		}
		out = append(out, q)
	}
	return out, nil
}
