{{/* Names and labels. */}}
{{- define "bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bridge.fullname" -}}
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

{{- define "bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bridge.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when the store is PostgreSQL (several replicas possible), "" for SQLite. */}}
{{- define "bridge.postgres" -}}
{{- if .Values.postgresql.existingSecret }}true{{ end }}
{{- end }}

{{/* Where the data volume and the secret files are mounted. */}}
{{- define "bridge.dataDir" -}}/var/lib/bridge{{- end }}
{{- define "bridge.secretDir" -}}/run/secrets/bridge{{- end }}

{{/*
The secrets bridge reads from files: the value under .Values.secrets, the config key (a dotted
path) the chart points at the file, and the file's name under bridge.secretDir. One line per
*_file secret key of bridge's configuration (cmd/bridge/config.go and the packages' Config).
*/}}
{{- define "bridge.secretSlots" -}}
- {value: babelforcePassword, config: babelforce.password_file, file: babelforce-password}
- {value: babelforceToken, config: babelforce.token_file, file: babelforce-token}
- {value: babelforceSCIMToken, config: babelforce.scim_token_file, file: babelforce-scim-token}
- {value: ldapBindPassword, config: directory.ldap.bind_password_file, file: ldap-bind-password}
- {value: scimSourceToken, config: directory.scim.token_file, file: scim-source-token}
- {value: inboundSCIMTokens, config: inbound_scim.tokens_file, file: inbound-scim-tokens}
- {value: adminToken, config: server.admin_token_file, file: admin-token}
- {value: ssoClientSecret, config: sso.client_secret_file, file: sso-client-secret}
- {value: uiOIDCClientSecret, config: ui.oidc.client_secret_file, file: ui-oidc-client-secret}
{{- end }}

{{/* The secret slots that name a Secret, as a YAML list (see bridge.secretSlots). */}}
{{- define "bridge.usedSecretSlots" -}}
{{- $used := list }}
{{- range (include "bridge.secretSlots" . | fromYamlArray) }}
{{- $s := get $.Values.secrets .value | default dict }}
{{- if $s.name }}
{{- $used = append $used (merge (dict "name" $s.name "key" (default "" $s.key)) .) }}
{{- end }}
{{- end }}
{{- toYaml $used }}
{{- end }}

{{/*
The configuration file: .Values.config plus what the chart owns (the *_file keys of the
mounted secrets, store.path for SQLite, server.listen, and defaults for the files bridge
writes, inside the data volume).
*/}}
{{- define "bridge.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $data := include "bridge.dataDir" . }}
{{- range (include "bridge.usedSecretSlots" . | fromYamlArray) }}
{{- $path := printf "%s/%s" (include "bridge.secretDir" $) .file }}
{{- $parts := splitList "." .config }}
{{- $cur := $cfg }}
{{- range (initial $parts) }}
{{- if not (kindIs "map" (get $cur .)) }}
{{- $_ := set $cur . (dict) }}
{{- end }}
{{- $cur = get $cur . }}
{{- end }}
{{- $_ := set $cur (last $parts) $path }}
{{- end }}
{{- range $section := list "store" "server" "sync" "sso" }}
{{- if not (kindIs "map" (get $cfg $section)) }}
{{- $_ := set $cfg $section (dict) }}
{{- end }}
{{- end }}
{{- if not (include "bridge.postgres" .) }}
{{- $_ := set $cfg.store "path" (printf "%s/bridge.db" $data) }}
{{- end }}
{{- $_ := set $cfg.server "listen" (printf ":%d" (int .Values.containerPort)) }}
{{- if not $cfg.sync.state_file }}
{{- $_ := set $cfg.sync "state_file" (printf "%s/state.json" $data) }}
{{- end }}
{{- if not $cfg.store }}
{{- $_ := unset $cfg "store" }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Refuses values that cannot work, each with what to change. Included by every template, so
`helm template` and `helm install` stop before anything is rendered.
*/}}
{{- define "bridge.validate" -}}
{{- $cfg := .Values.config | default dict }}
{{- $replicas := int .Values.replicaCount }}
{{- if lt $replicas 0 }}
{{- fail (printf "replicaCount must not be negative, got %d" $replicas) }}
{{- end }}
{{- if and (gt $replicas 1) (not (include "bridge.postgres" .)) }}
{{- fail (printf "replicaCount %d needs PostgreSQL: SQLite on a volume serves one replica only. Set postgresql.existingSecret to a Secret holding the postgres:// URL (key postgresql.key), or set replicaCount 1." $replicas) }}
{{- end }}
{{- $dir := get $cfg "directory" | default dict }}
{{- $inbound := get $cfg "inbound_scim" | default dict }}
{{- if and (gt $replicas 1) (ne (toString (get $dir "type")) "scim_push") (not (get $inbound "enabled")) }}
{{- fail (printf "replicaCount %d needs config.directory.type scim_push or config.inbound_scim.enabled true: only then does bridge open the PostgreSQL store, which holds the run lock and the state the replicas share (without it every replica would reconcile on its own). Set replicaCount 1 or enable the inbound SCIM endpoint." $replicas) }}
{{- end }}
{{- if hasKey (get $cfg "store" | default dict) "path" }}
{{- fail "config.store.path is set by the chart: SQLite on the data volume, or the URL from postgresql.existingSecret. Remove config.store.path." }}
{{- end }}
{{- $inline := dict "babelforce" (list "password" "token" "scim_token") "sso" (list "client_secret") "inbound_scim" (list "tokens") "server" (list "admin_token") }}
{{- range $section, $keys := $inline }}
{{- $sec := get $cfg $section | default dict }}
{{- range $keys }}
{{- if hasKey $sec . }}
{{- fail (printf "config.%s.%s would put a secret in the ConfigMap: remove it and name an existing Secret in secrets.* instead (see the chart's README)" $section .) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $src, $key := dict "ldap" "bind_password" "scim" "token" }}
{{- if hasKey (get $dir $src | default dict) $key }}
{{- fail (printf "config.directory.%s.%s would put a secret in the ConfigMap: remove it and name an existing Secret in secrets.* instead (see the chart's README)" $src $key) }}
{{- end }}
{{- end }}
{{- if hasKey (dig "ui" "oidc" dict $cfg | default dict) "client_secret" }}
{{- fail "config.ui.oidc.client_secret would put a secret in the ConfigMap: remove it and name an existing Secret in secrets.* instead (see the chart's README)" }}
{{- end }}
{{- range (include "bridge.secretSlots" . | fromYamlArray) }}
{{- $s := get $.Values.secrets .value | default dict }}
{{- if and $s.name (not $s.key) }}
{{- fail (printf "secrets.%s.key is empty: name the key of Secret %q that holds the value" .value $s.name) }}
{{- end }}
{{- end }}
{{- if and .Values.secrets.ldapBindPassword.name (ne (toString (get $dir "type")) "ldap") }}
{{- fail "secrets.ldapBindPassword is set but config.directory.type is not ldap" }}
{{- end }}
{{- if and .Values.secrets.scimSourceToken.name (ne (toString (get $dir "type")) "scim") }}
{{- fail "secrets.scimSourceToken is set but config.directory.type is not scim" }}
{{- end }}
{{- if and .Values.postgresql.existingSecret (not .Values.postgresql.key) }}
{{- fail "postgresql.key is empty: name the key of the Secret that holds the postgres:// URL" }}
{{- end }}
{{- end }}

{{/* GOMEMLIMIT: goMemLimitPercent of resources.limits.memory when it is given in Mi or Gi. */}}
{{- define "bridge.goMemLimit" -}}
{{- $limit := toString (dig "limits" "memory" "" (.Values.resources | default dict)) }}
{{- $pct := int .Values.goMemLimitPercent }}
{{- if and $limit (gt $pct 0) }}
{{- $mib := 0 }}
{{- if hasSuffix "Gi" $limit }}
{{- $mib = mul (trimSuffix "Gi" $limit | int) 1024 }}
{{- else if hasSuffix "Mi" $limit }}
{{- $mib = trimSuffix "Mi" $limit | int }}
{{- end }}
{{- if gt $mib 0 }}
{{- printf "%dMiB" (div (mul $mib $pct) 100) }}
{{- end }}
{{- end }}
{{- end }}
