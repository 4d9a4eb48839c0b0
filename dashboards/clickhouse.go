package dashboards

import (
	"encoding/json"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// ClickHousePluginID is the plugin id of the official ClickHouse data
// source, grafana-clickhouse-datasource (v4 and later).
const ClickHousePluginID = "grafana-clickhouse-datasource"

// clickHousePluginVersion is written into every query: the plugin treats
// a query without a pluginVersion of at least 4.0.0 as a v3 query and
// migrates it when the panel loads.
const clickHousePluginVersion = "4.0.0"

// The plugin's format option: how the backend shapes the result. Time
// series results are turned from long to wide, so that every label column
// (service, priority...) becomes one series.
const (
	chFormatTimeSeries = 0
	chFormatTable      = 1
)

// ClickHouseQuery is the target of a grafana-clickhouse-datasource panel
// in the SQL editor. The SDK (v0.0.18) has no type for this plugin, so
// this one follows the plugin's own model (CHSqlQuery in src/types/sql.ts
// and the backend's sqlutil.Query): rawSql with the plugin's macros,
// queryType for the editor, and format for the backend.
type ClickHouseQuery struct {
	RefId         string                `json:"refId"`
	Hide          *bool                 `json:"hide,omitempty"`
	Datasource    *common.DataSourceRef `json:"datasource,omitempty"`
	EditorType    string                `json:"editorType"`
	QueryType     string                `json:"queryType"`
	Format        int                   `json:"format"`
	RawSql        string                `json:"rawSql"`
	PluginVersion string                `json:"pluginVersion"`
}

// ImplementsDataqueryVariant marks ClickHouseQuery as a data query.
func (ClickHouseQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id.
func (ClickHouseQuery) DataqueryType() string { return ClickHousePluginID }

// Validate implements variants.Dataquery.
func (ClickHouseQuery) Validate() error { return nil }

// Equals implements variants.Dataquery.
func (q ClickHouseQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(ClickHouseQuery)
	return ok && reflect.DeepEqual(q, o)
}

// ClickHouseVariantConfig lets cog unmarshal dashboards holding
// ClickHouse queries: cog.NewRuntime().RegisterDataqueryVariant(it).
func ClickHouseVariantConfig() variants.DataqueryConfig {
	unmarshal := func(raw []byte) (variants.Dataquery, error) {
		var q ClickHouseQuery
		if err := json.Unmarshal(raw, &q); err != nil {
			return nil, err
		}
		return q, nil
	}
	return variants.DataqueryConfig{Identifier: ClickHousePluginID, DataqueryUnmarshaler: unmarshal, StrictDataqueryUnmarshaler: unmarshal}
}

var _ cog.Builder[variants.Dataquery] = (*clickHouseQueryBuilder)(nil)

// clickHouseQueryBuilder builds a ClickHouseQuery for a panel.
type clickHouseQueryBuilder struct{ q ClickHouseQuery }

func newClickHouseQuery(sql string, table bool) *clickHouseQueryBuilder {
	b := &clickHouseQueryBuilder{q: ClickHouseQuery{
		RefId: "A", Datasource: &clickHouseRef, EditorType: "sql", RawSql: sql, PluginVersion: clickHousePluginVersion,
		QueryType: "timeseries", Format: chFormatTimeSeries,
	}}
	if table {
		b.q.QueryType, b.q.Format = "table", chFormatTable
	}
	return b
}

func (b *clickHouseQueryBuilder) refID(id string) *clickHouseQueryBuilder {
	b.q.RefId = id
	return b
}

// Build implements cog.Builder.
func (b *clickHouseQueryBuilder) Build() (variants.Dataquery, error) { return b.q, nil }
