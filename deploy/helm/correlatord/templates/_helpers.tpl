{{/* Names, labels and the rendered correlatord.yml. */}}

{{- define "correlatord.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "correlatord.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "correlatord.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "correlatord.selectorLabels" -}}
app.kubernetes.io/name: {{ include "correlatord.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "correlatord.labels" -}}
helm.sh/chart: {{ include "correlatord.chart" . }}
{{ include "correlatord.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: correlator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "correlatord.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "correlatord.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "correlatord.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Where the chart mounts what it ships. The container's arguments name
/etc/correlatord/correlatord.yml, so these are fixed.
*/}}
{{- define "correlatord.configDir" -}}/etc/correlatord{{- end }}
{{- define "correlatord.rulesDir" -}}/etc/correlatord/rules{{- end }}
{{- define "correlatord.topologyFile" -}}/etc/correlatord/cmdb/topology.yaml{{- end }}

{{/*
correlatord.config renders correlatord.yml: .Values.config with the fields the
chart owns filled in, after checking that the secrets the chart passes through
the environment will actually be read (correlatord uses an environment
variable only when the file gives neither the value nor a *_file for it).
*/}}
{{- define "correlatord.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if hasKey $cfg "data_dir" }}
{{- fail "config.data_dir: the chart sets it to dataDir.mountPath (the data volume); remove it from config" }}
{{- end }}
{{- $_ := set $cfg "data_dir" .Values.dataDir.mountPath }}

{{- if .Values.rules }}
{{- $rules := deepCopy (get $cfg "rules" | default dict) }}
{{- range $name, $_ := .Values.rules }}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+\\.ya?ml$" $name) }}
{{- fail (printf "rules: %q must be a file name ending in .yml or .yaml (the daemon loads only those)" $name) }}
{{- end }}
{{- end }}
{{- $files := concat (list (include "correlatord.rulesDir" .)) (get $rules "files" | default list) }}
{{- $_ := set $rules "files" $files }}
{{- $_ := set $cfg "rules" $rules }}
{{- end }}

{{- if .Values.cmdb.topology }}
{{- $cmdb := deepCopy (get $cfg "cmdb" | default dict) }}
{{- if or (get $cmdb "file") (get $cmdb "url") }}
{{- fail "cmdb.topology is set, and so is config.cmdb.file or config.cmdb.url: use one" }}
{{- end }}
{{- $_ := set $cmdb "file" (include "correlatord.topologyFile" .) }}
{{- $_ := set $cmdb "format" .Values.cmdb.format }}
{{- $_ := set $cfg "cmdb" $cmdb }}
{{- end }}

{{- $kafka := get $cfg "kafka" | default dict }}
{{- if .Values.secrets.kafkaSaslPassword.existingSecret }}
{{- $sasl := get $kafka "sasl" | default dict }}
{{- if not (get $kafka "brokers") }}
{{- fail "secrets.kafkaSaslPassword is set but config.kafka.brokers is empty (Kafka is off)" }}
{{- end }}
{{- if not (and (get $sasl "mechanism") (get $sasl "username")) }}
{{- fail "secrets.kafkaSaslPassword is set: config.kafka.sasl needs mechanism and username" }}
{{- end }}
{{- if or (get $sasl "password") (get $sasl "password_file") }}
{{- fail "secrets.kafkaSaslPassword is set, and so is config.kafka.sasl.password or password_file, which would win over it: use one" }}
{{- end }}
{{- end }}

{{- $ch := get $cfg "clickhouse" | default dict }}
{{- if .Values.secrets.clickhousePassword.existingSecret }}
{{- if not (get $ch "addr") }}
{{- fail "secrets.clickhousePassword is set but config.clickhouse.addr is empty (analytics is off)" }}
{{- end }}
{{- if or (get $ch "password") (get $ch "password_file") }}
{{- fail "secrets.clickhousePassword is set, and so is config.clickhouse.password or password_file, which would win over it: use one" }}
{{- end }}
{{- end }}

{{- $http := get $cfg "http" | default dict }}
{{- if .Values.secrets.ingestToken.existingSecret }}
{{- if or (get $http "bearer_token") (get $http "bearer_token_file") }}
{{- fail "secrets.ingestToken is set, and so is config.http.bearer_token or bearer_token_file, which would win over it: use one" }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The environment variable of one secrets.* entry. */}}
{{- define "correlatord.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.existingSecret }}
      key: {{ required (printf "secrets: the key of %s must not be empty" .ref.existingSecret) .ref.key }}
{{- end }}
