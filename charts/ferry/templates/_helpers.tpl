{{/*
The chart's name: nameOverride, else "ferry".
*/}}
{{- define "ferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else the release name,
followed by the chart's name unless the release name contains it. Cut to 45
characters so that "<prefix>-manager-metrics" stays a valid Service name.
*/}}
{{- define "ferry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := include "ferry.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels on every object: the chart's, then commonLabels (the chart's win).
Call with (dict "root" $ "component" "manager").
*/}}
{{- define "ferry.labels" -}}
{{- $chart := dict
  "helm.sh/chart" (printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-")
  "app.kubernetes.io/version" .root.Chart.AppVersion
  "app.kubernetes.io/managed-by" .root.Release.Service
  "app.kubernetes.io/part-of" "ferry" }}
{{- toYaml (merge (dict) (include "ferry.selectorLabels" . | fromYaml) $chart (.root.Values.commonLabels | default dict)) }}
{{- end }}

{{/*
Labels on a component's pods: its selector labels, commonLabels and its
podLabels (the selector labels win). Not the chart's version: a chart
upgrade that changes nothing else must not restart the agents, whose pods
carry the node's worker processes.
Call with (dict "root" $ "component" "agent" "podLabels" .Values.agent.podLabels).
*/}}
{{- define "ferry.podLabels" -}}
{{- toYaml (merge (dict) (include "ferry.selectorLabels" . | fromYaml) (dict "app.kubernetes.io/part-of" "ferry") (.podLabels | default dict) (.root.Values.commonLabels | default dict)) }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "root" $ "component" "agent").
*/}}
{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/*
An image reference from an image value and the chart: repository, then
@digest when set, else :tag (default the chart's appVersion).
Call with (dict "image" .Values.manager.image "root" $).
*/}}
{{- define "ferry.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/*
The port of a bind address such as ":8080" or "$(HOST_IP):9441". Any
value is taken as text: one the schema refuses, when it is skipped, then
renders, for validate.yaml to refuse it saying why.
*/}}
{{- define "ferry.port" -}}
{{- regexFind "[0-9]+$" (toString .) }}
{{- end }}

{{/*
"true" when a bind address serves its endpoint, empty when it is 0, which
turns the endpoint off (as the binaries take it): the string "0", or any
number, which the schema lets through only when it is 0 (it compares
numbers by value: 0, --set's, and a values file's 0.0, -0.0 or 0e0, whose
text is not "0").
*/}}
{{- define "ferry.serves" -}}
{{- if and (kindIs "string" .) (ne . "0") }}true{{ end }}
{{- end }}

{{/*
"true" when a component serves /metrics (<component>.metricsBindAddress is
not 0), and with "secure" when it serves them over HTTPS to authorized
tokens (and metricsSecure): only then do its metrics Service, container
port, ServiceMonitor, certificate and metrics-auth grant mean anything.
For (dict "root" $ "component" "manager" or "agent" ["secure" true]).
*/}}
{{- define "ferry.metricsServed" -}}
{{- $v := index .root.Values .component }}
{{- if and (include "ferry.serves" $v.metricsBindAddress) (or (not .secure) $v.metricsSecure) }}true{{ end }}
{{- end }}

{{/*
"true" when a component's metrics are served (ferry.metricsServed) where
a Prometheus can reach them: not on a loopback address alone
(ferry.loopbackHost), which only the component's own network namespace
reaches (the manager's pod's; the agent's node's, on the host network).
Only then are its metrics Service and ServiceMonitor rendered.
For (dict "root" $ "component" "manager" or "agent").
*/}}
{{- define "ferry.metricsScraped" -}}
{{- if and (include "ferry.metricsServed" .) (not (include "ferry.loopbackHost" (index .root.Values .component).metricsBindAddress)) }}true{{ end }}
{{- end }}

{{/*
"true" when some component serves secure metrics (ferry.metricsServed
with "secure"): only then are the metrics-auth and metrics-reader
ClusterRoles rendered, and the chart's scraper, bound to the reader, with
them. One definition, so that no binding names a role left out.
*/}}
{{- define "ferry.metrics.anySecure" -}}
{{- range list "manager" "agent" }}
{{- if include "ferry.metricsServed" (dict "root" $ "component" . "secure" true) }}true{{ break }}{{ end }}
{{- end }}
{{- end }}

{{/*
The host of a bind address when it is a loopback one, else nothing: an
endpoint bound there is reached from its own network namespace only. The
host is lowercased and loses a trailing dot, as a resolver reads a name:
localhost and the names /etc/hosts gives loopback, ip6-localhost and
ip6-loopback (the kubelet's, a pod's own; Debian's too), localhost4,
localhost6, localhost.localdomain and localhost6.localdomain6 (RHEL's and
Fedora's, which a hostNetwork pod, the agent's, has from its node),
127.0.0.0/8, ::1 in any of its spellings
(0:0:0:0:0:0:0:1, 0::0001) and 127.0.0.0/8 mapped into IPv6
(::ffff:127.0.0.1, ::ffff:7f00:1), which Go's net.IP.IsLoopback counts.
*/}}
{{- define "ferry.loopbackHost" -}}
{{- $host := regexReplaceAll ":[0-9]+$" (toString .) "" | trimPrefix "[" | trimSuffix "]" | lower | trimSuffix "." }}
{{- $v4 := "127\\.[0-9]+\\.[0-9]+\\.[0-9]+" }}
{{- $v6 := "(0{1,4}(:0{1,4}){0,5})?::(0{1,4}:){0,5}0{0,3}1|(0{1,4}:){7}0{0,3}1" }}
{{- $mapped := printf "((0{1,4}:){5}|(0{1,4}(:0{1,4}){0,3})?::(0{1,4}:){0,4})ffff:(%s|7f[0-9a-f]{2}:[0-9a-f]{1,4})" $v4 }}
{{- if or (has $host (list "localhost" "ip6-localhost" "ip6-loopback" "localhost4" "localhost6" "localhost.localdomain" "localhost6.localdomain6")) (regexMatch (printf "^(%s|%s|%s)$" $v4 $v6 $mapped) $host) }}{{ $host }}{{ end }}
{{- end }}

{{/*
The host a probe of an agent's endpoint asks: the kubelet probes the pod's
IP, which with hostNetwork is the node's, unless told otherwise. An agent
that binds only a loopback address is probed there: the kubelet runs in
the node's network too. (The manager's pod has a network of its own, whose
loopback no probe reaches: manager/deployment.yaml renders no probes.)
*/}}
{{- define "ferry.agent.probeHost" -}}
{{- include "ferry.loopbackHost" . }}
{{- end }}

{{- define "ferry.manager.fullname" -}}
{{- printf "%s-manager" (include "ferry.fullname" .) }}
{{- end }}

{{/*
The agents' node selector: agent.nodeSelector, else the nodes labelled for
Ferry. A default in values.yaml would be merged with the user's map (Helm
merges maps), so that every node would also need ferry.dev/web=true.
*/}}
{{- define "ferry.agent.nodeSelector" -}}
{{- toYaml (.Values.agent.nodeSelector | default (dict "kubernetes.io/os" "linux" "ferry.dev/web" "true")) }}
{{- end }}

{{- define "ferry.agent.fullname" -}}
{{- printf "%s-agent" (include "ferry.fullname" .) }}
{{- end }}

{{/*
The Secret and key whose token the ServiceMonitors send to secure metrics:
metrics.serviceMonitor.tokenSecret, else the chart's scraper's
(templates/metrics/scraper.yaml). As (dict "name" ... "key" ...).
*/}}
{{- define "ferry.metrics.tokenSecret" -}}
{{- $s := .Values.metrics.serviceMonitor.tokenSecret }}
{{- if $s.name }}
{{- toYaml (dict "name" $s.name "key" $s.key) }}
{{- else }}
{{- toYaml (dict "name" (printf "%s-metrics-scraper-token" (include "ferry.fullname" .)) "key" "token") }}
{{- end }}
{{- end }}

{{- define "ferry.manager.serviceAccountName" -}}
{{- if .Values.manager.serviceAccount.create }}
{{- default (include "ferry.manager.fullname" .) .Values.manager.serviceAccount.name }}
{{- else }}
{{- required "manager.serviceAccount.name is required when manager.serviceAccount.create is false" .Values.manager.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferry.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "ferry.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- required "agent.serviceAccount.name is required when agent.serviceAccount.create is false" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret whose certificate the secure metrics of a component serve
(<component>.metricsCertSecret), mounted at deployargs.MetricsCertMountPath;
empty when there is none, when metrics are plain HTTP, which serves no
certificate, or when they are off (metricsBindAddress 0). For (dict "root" $ "component" "manager" or "agent").
*/}}
{{- define "ferry.metricsCertSecret" -}}
{{- if include "ferry.metricsServed" (dict "root" .root "component" .component "secure" true) }}
{{- (index .root.Values .component).metricsCertSecret }}
{{- end }}
{{- end }}

{{/*
The name the ServiceMonitor of a component verifies its metrics
certificate for: the agents' agent.metricsCertServerName, else (and for
the manager) the component's metrics Service's. Every agent serves the one
certificate, on its node's address: no name of a node's would do for all.
For (dict "root" $ "component" "manager" or "agent").
*/}}
{{- define "ferry.metricsCertServerName" -}}
{{- $service := printf "%s-metrics.%s.svc" (include (printf "ferry.%s.fullname" .component) .root) .root.Release.Namespace }}
{{- (index .root.Values .component).metricsCertServerName | default $service }}
{{- end }}

{{/*
The volume and the mount of the metrics certificate's Secret
(<component>.metricsCertSecret), in the pod's volumes and the
container's volumeMounts; nothing without one. A Secret volume follows
the Secret's renewals, which the binary reads as they land. For (dict
"root" $ "component" "manager" or "agent").
*/}}
{{- define "ferry.metricsCert.volume" -}}
{{- with include "ferry.metricsCertSecret" . -}}
- name: metrics-cert
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}

{{- define "ferry.metricsCert.volumeMount" -}}
{{- if include "ferry.metricsCertSecret" . -}}
- name: metrics-cert
  mountPath: {{ include "ferry.metricsCertMountPath" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Where the metrics certificate is mounted: deployargs.MetricsCertMountPath. */}}
{{- define "ferry.metricsCertMountPath" -}}
/etc/ferry/metrics-certs
{{- end }}

{{/*
--metrics-secure, from <component>.metricsSecure, only for metrics that
are served: with metricsBindAddress 0 the binaries ignore it, so the chart
leaves it out. validate.yaml refuses in extraArgs only the flags the chart
renders: with the metrics off, an extra --metrics-secure is let through.
With "names", the value it comes from (as ferry.valueArgs).
For (dict "root" $ "component" "manager" or "agent" ["names" true]).
*/}}
{{- define "ferry.metricsSecure.args" -}}
{{- if include "ferry.metricsServed" (dict "root" .root "component" .component) }}
{{- include "ferry.valueArgs" (dict "root" .root "names" .names "flags" (list "metrics-secure" (printf "%s.metricsSecure" .component))) }}
{{- end }}
{{- end }}

{{/*
The argument of the metrics certificate, if any (as ferry.metricsCert.volume);
with "names", the value it comes from (as ferry.valueArgs), if the chart
renders the argument.
*/}}
{{- define "ferry.metricsCert.args" -}}
{{- if include "ferry.metricsCertSecret" . }}
{{- if .names }}
metrics-cert-path: {{ .component }}.metricsCertSecret
{{- else }}
- {{ printf "--metrics-cert-path=%s" (include "ferry.metricsCertMountPath" .) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Arguments the chart renders from values: "flags" lists flag names, each
followed by the value it comes from ("agent.heartbeatInterval"). Renders
"- --flag=value" for each (a bool as true or false, a number as an
integer), or, with "names", a map of each flag to its value's name, which
validate.yaml holds extraArgs to: a caller renders both or neither, so
that only a flag the chart renders is refused in extraArgs. Call with (dict "root" $ "names" bool
"flags" (list "heartbeat-interval" "agent.heartbeatInterval" ...)).
*/}}
{{- define "ferry.valueArgs" -}}
{{- $flags := .flags }}
{{- range $i, $flag := $flags }}
{{- if not (mod $i 2) }}
{{- $name := index $flags (add1 $i) }}
{{- if $.names }}
{{ $flag }}: {{ $name }}
{{- else }}
{{- $v := $.root.Values }}
{{- range splitList "." $name }}{{ $v = index $v . }}{{ end }}
{{- if kindIs "bool" $v }}{{ $v = printf "%t" $v }}
{{- else if not (kindIs "string" $v) }}{{ $v = printf "%d" (int64 $v) }}
{{- end }}
- {{ printf "--%s=%s" $flag $v | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Flags the chart sets itself, from no value, which validate.yaml refuses in
<component>.extraArgs: a map of each to what the chart sets it to and
what another setting would break, for the message. Only the agent's node:
the Lease namespaces the chart sets too may move, both to one namespace
(validate.yaml checks them). Call with (dict "component" "manager" or
"agent").
*/}}
{{- define "ferry.fixedArgs" -}}
{{- if eq .component "agent" }}
node-name: {{ "each pod's node ($(NODE_NAME)): an agent serves the pools of the node it names, renews that node's Lease, and the isolation policies refuse its writes for any node but its own" | quote }}
{{- end }}
{{- end }}

{{/*
Why a namespace given to a namespace flag in extraArgs (a record of
validate.yaml's walk: "namespace", "refused") can name no namespace, a
namespace being a DNS label: lowercase letters, digits and "-", beginning
and ending with a letter or digit, at most 63 characters. Nothing for a
name that can be, and, neither the form nor the length checked, for one
with a $(VAR) the kubelet expands and for one refused already (another
flag taken for it).
*/}}
{{- define "ferry.notANamespace" -}}
{{- $ns := .namespace }}
{{- if not (or .refused (contains "$(" $ns)) }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns) }}
{{- printf "which is not a DNS label (lowercase letters, digits and \"-\", beginning and ending with a letter or digit)" }}
{{- else if gt (len $ns) 63 }}
{{- printf "which is %d characters long, over the 63 of a DNS label" (len $ns) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Every flag of a binary (cmd/manager's; cmd/agent's cluster mode), as a
YAML map of its name to its kind: "boolean", "duration" (the flag
package's Duration), "number" (its Int, Int64 or Float64) or "value" (any
other). A name neither binary defines makes the flag package fail at the
start ("flag provided but not defined"). Written without "=", a boolean
flag takes no next item for its value, which the flag package leaves an
argument; any other flag takes the next item, whatever it reads.
validate.yaml walks extraArgs by it, and checks a duration's value; every
number is one the chart renders from a value, which extraArgs may not
give. TestChartKnowsTheBinariesFlags holds it to the binaries' own -h,
both ways, and each number to being rendered. Call with (dict
"component" "manager" or "agent").
*/}}
{{- define "ferry.knownFlags" -}}
{{- if eq .component "manager" }}
agent-lease-namespace: value
agent-stale-after: duration
health-probe-bind-address: value
kube-api-burst: number
kube-api-qps: number
kubeconfig: value
leader-elect: boolean
leader-election-namespace: value
max-concurrent-reconciles: number
metrics-bind-address: value
metrics-cert-key: value
metrics-cert-name: value
metrics-cert-path: value
metrics-secure: boolean
pprof-bind-address: value
zap-devel: boolean
zap-encoder: value
zap-log-level: value
zap-stacktrace-level: value
zap-time-encoding: value
{{- else }}
advertise-address: value
bind-address: value
drain-delay: duration
health-probe-bind-address: value
heartbeat-interval: duration
idle-timeout: value
kube-api-burst: number
kube-api-qps: number
kubeconfig: value
lease-namespace: value
max-header-bytes: number
metrics-bind-address: value
metrics-cert-key: value
metrics-cert-name: value
metrics-cert-path: value
metrics-secure: boolean
node-name: value
read-header-timeout: value
request-body-timeout: value
request-buffer-dir: value
request-buffer-disk: number
response-buffer-memory: number
send-timeout: value
simulate-workers: duration
state-dir: value
stats-interval: duration
trust-forwarded-for: boolean
worker-users: value
zap-devel: boolean
zap-encoder: value
zap-log-level: value
zap-stacktrace-level: value
zap-time-encoding: value
{{- end }}
{{- end }}

{{/*
What follows validate.yaml's refusal of an extraArgs item at which the
binary stops reading ("item"), for "after" items after it: that it reads
none of them, and that neither does the check, which says nothing of
them; nothing with none after it. For (dict "reads" "The manager reads"
"item" "stray" "after" 2).
*/}}
{{- define "ferry.unreadAfter" -}}
{{- $n := int .after }}
{{- if gt $n 0 }}
{{- printf ". %s no item after %s, nor does this check: %s after it %s unchecked" .reads .item (ternary "the item" (printf "the %d items" $n) (eq $n 1)) (ternary "is" "are" (eq $n 1)) }}
{{- end }}
{{- end }}

{{/*
The manager's arguments: internal/deployargs.ManagerArgs, from values,
then manager.extraArgs; with "names", which values the flags come from
(ferry.valueArgs). The agents' Leases are always in the release's
namespace: $(POD_NAMESPACE), from the downward API
(deployargs.ManagerEnvVars). Call with (dict "root" $ ["names" true]).
*/}}
{{- define "ferry.manager.args" -}}
{{- $r := .root }}
{{- include "ferry.valueArgs" (dict "root" $r "names" .names "flags" (list
  "leader-elect" "manager.leaderElect"
  "metrics-bind-address" "manager.metricsBindAddress")) }}
{{- include "ferry.metricsSecure.args" (dict "root" $r "names" .names "component" "manager") }}
{{- include "ferry.metricsCert.args" (dict "root" $r "names" .names "component" "manager") }}
{{- include "ferry.valueArgs" (dict "root" $r "names" .names "flags" (list
  "health-probe-bind-address" "manager.healthProbeBindAddress"
  "agent-stale-after" "manager.agentStaleAfter")) }}
{{- if not .names }}
- "--agent-lease-namespace=$(POD_NAMESPACE)"
{{- end }}
{{- include "ferry.valueArgs" (dict "root" $r "names" .names "flags" (list
  "kube-api-qps" "manager.kubeAPIQPS"
  "kube-api-burst" "manager.kubeAPIBurst"
  "max-concurrent-reconciles" "manager.maxConcurrentReconciles"
  "zap-log-level" "manager.logLevel")) }}
{{- if not .names }}
{{- range $r.Values.manager.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The agent's arguments: internal/deployargs.AgentArgs, from values, then
agent.extraArgs; with "names", which values the flags come from
(ferry.valueArgs). Its Lease is always in the release's namespace:
$(POD_NAMESPACE), from the downward API (deployargs.AgentEnvVars). Call
with (dict "root" $ ["names" true]).
*/}}
{{- define "ferry.agent.args" -}}
{{- $r := .root }}
{{- if not .names }}
- "--node-name=$(NODE_NAME)"
{{- end }}
{{- include "ferry.valueArgs" (dict "root" $r "names" .names "flags" (list
  "bind-address" "agent.bindAddress"
  "advertise-address" "agent.advertiseAddress"
  "state-dir" "agent.stateDir"
  "metrics-bind-address" "agent.metricsBindAddress")) }}
{{- include "ferry.metricsSecure.args" (dict "root" $r "names" .names "component" "agent") }}
{{- include "ferry.metricsCert.args" (dict "root" $r "names" .names "component" "agent") }}
{{- include "ferry.valueArgs" (dict "root" $r "names" .names "flags" (list
  "health-probe-bind-address" "agent.healthProbeBindAddress"
  "heartbeat-interval" "agent.heartbeatInterval"
  "stats-interval" "agent.statsInterval"
  "drain-delay" "agent.drainDelay")) }}
{{- if not .names }}
- "--lease-namespace=$(POD_NAMESPACE)"
{{- end }}
{{- include "ferry.valueArgs" (dict "root" $r "names" .names "flags" (list
  "kube-api-qps" "agent.kubeAPIQPS"
  "kube-api-burst" "agent.kubeAPIBurst"
  "read-header-timeout" "agent.readHeaderTimeout"
  "idle-timeout" "agent.idleTimeout"
  "send-timeout" "agent.sendTimeout"
  "request-body-timeout" "agent.requestBodyTimeout"
  "max-header-bytes" "agent.maxHeaderBytes"
  "response-buffer-memory" "agent.responseBufferMemory"
  "request-buffer-disk" "agent.requestBufferDisk"
  "trust-forwarded-for" "agent.trustForwardedFor"
  "zap-log-level" "agent.logLevel")) }}
{{- if $r.Values.agent.workerUsers }}
{{- include "ferry.valueArgs" (dict "root" $r "names" .names "flags" (list "worker-users" "agent.workerUsers")) }}
{{- end }}
{{- if not .names }}
{{- range $r.Values.agent.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A ValidatingAdmissionPolicy and its binding, from the chart's copies of
config/'s files (files/, which `make manifests` keeps in step) renamed
"name" and labelled for the release's "component". With "agent", the
policy's match condition ferry-agent names the release's agent service
account instead of config/'s (ferry-system's ferry-agent): the one string
of such a policy that is the release's. Call with (dict "root" $ "policy"
"files/..." "binding" "files/..." "name" ... "component" ... ["agent" true]).
*/}}
{{- define "ferry.policy" -}}
{{- $labels := include "ferry.labels" (dict "root" .root "component" .component) | fromYaml }}
{{- $policy := .root.Files.Get .policy | fromYaml }}
{{- $_ := set $policy "metadata" (dict "name" .name "labels" $labels) }}
{{- if .agent }}
{{- $user := printf "system:serviceaccount:%s:%s" .root.Release.Namespace (include "ferry.agent.serviceAccountName" .root) }}
{{- $named := false }}
{{- range $policy.spec.matchConditions }}
{{- if eq .name "ferry-agent" }}
{{- $_ := set . "expression" (printf "request.userInfo.username == '%s'" $user) }}
{{- $named = true }}
{{- end }}
{{- end }}
{{- if not $named }}
{{- fail (printf "%s has no match condition ferry-agent, which the chart points at the release's agent" .policy) }}
{{- end }}
{{- end }}
{{- $binding := .root.Files.Get .binding | fromYaml }}
{{- $_ := set $binding "metadata" (dict "name" .name "labels" $labels) }}
{{- $_ := set $binding.spec "policyName" .name }}
{{- toYaml $policy }}
---
{{ toYaml $binding }}
{{- end }}

{{/*
Why an advertise address (the schema has checked it is an IP or
$(HOST_IP)) cannot be an AppGroup Service's endpoint, or nothing: the
manager lists IPv4 addresses only (desiredEndpoints), and the API server
refuses unspecified, loopback and link-local ones in an EndpointSlice.
*/}}
{{- define "ferry.advertiseAddressProblem" -}}
{{- $refused := "which the API server refuses in an EndpointSlice" }}
{{- if contains ":" . }}an IPv6 address: the manager lists only IPv4 addresses in the Services' EndpointSlices
{{- else if eq . "0.0.0.0" }}the unspecified address, {{ $refused }}
{{- else if hasPrefix "127." . }}a loopback address, {{ $refused }}
{{- else if hasPrefix "169.254." . }}a link-local address, {{ $refused }}
{{- end }}
{{- end }}

{{/*
The nanoseconds a Go duration ("1m30s", "500ms", "1.5h", a sign before
it or not) stands for, without its sign, as time.ParseDuration sums
them: digits in a string, up to 2^63 (9223372036854775808, which Go
takes only negative), or "" past it, where Go stops reading. Its table
of Go's units sizes every value: ferry.durationProblem and
ferry.durationParseError size a value with it, and validate.yaml counts
the heartbeat and manager.agentStaleAfter with it, to compare them. (The
digits each unit keeps past the nanosecond are a second table, in
ferry.partsPastTheNanosecond, which reads a value's parts again: folding
it in here would have this helper return two things to its callers.) Its form is checked before, by
ferry.durationProblem (under --skip-schema-validation) or the schema.

Summed in int64 (sprig's add, mul, div and mod), as seconds and
nanoseconds apart, so that nothing overflows on the way to 2^63 ns: the
whole number of a part is split at its ninth digit from the right. A
fraction counts as Go counts it, cut down to a whole nanosecond (0.1ns
is 0): ferry.fractionNanoseconds.

Called with (dict "value" ... "slack" k), it counts on to 2^63+k ns,
"" past that: ferry.durationProblem's negative values, which Go may read
as -2^63 ns from a count up to k ns past it (k parts past the
nanosecond); a part whose whole number is past 2^63 is "" whatever k, Go
stopping there (-9223372036854775809ns0.0000000001s). A k up to 145224192 (2^63 ns short of 9223372037 s, where
a part's whole number stops the count): far more parts than any value has.
*/}}
{{- define "ferry.nanoseconds" -}}
{{- $value := . }}
{{- $slack := 0 }}
{{- if kindIs "map" . }}{{ $value = .value }}{{ $slack = .slack | int64 }}{{ end }}
{{- /* The bound, 2^63+k ns, in seconds and nanoseconds as the sum is kept. */}}
{{- $boundSecs := add 9223372036 (div (add 854775808 $slack) 1000000000) }}
{{- $boundNanos := mod (add 854775808 $slack) 1000000000 }}
{{- $units := dict "ns" 1 "us" 1000 "µs" 1000 "μs" 1000 "ms" 1000000 "s" 1000000000 "m" 60000000000 "h" 3600000000000 }}
{{- $secs := 0 }}
{{- $nanos := 0 }}
{{- $over := false }}
{{- range regexFindAll "[0-9.]+[^0-9.]+" $value -1 }}
{{- $n := regexFind "^[0-9.]+" . }}
{{- $unit := get $units (trimPrefix $n .) }}
{{- /* No leading zeros: sprig's int64 reads "010" as octal. */}}
{{- $whole := regexReplaceAll "^0+" (regexFind "^[0-9]*" $n) "" }}
{{- $cut := max 0 (sub (len $whole) 9) | int }}
{{- $hi := substr 0 $cut $whole | default "0" | int64 }}
{{- $lo := regexReplaceAll "^0+" (substr $cut (len $whole) $whole) "" | default "0" | int64 }}
{{- /* Go stops at a whole number past 2^63, whatever follows it: the slack is for fractions only. */}}
{{- if or (gt (len $whole) 19) (and (eq (len $whole) 19) (gt $whole "9223372036854775808")) (gt $hi (div 9223372037 $unit)) }}
{{- $over = true }}
{{- break }}
{{- end }}
{{- $secs = add $secs (mul $hi $unit) (mul $lo (div $unit 1000000000)) }}
{{- $nanos = add $nanos (mul $lo (mod $unit 1000000000)) }}
{{- $frac := regexFind "[0-9]*$" (regexFind "\\.[0-9]*$" $n) }}
{{- $nanos = add $nanos (include "ferry.fractionNanoseconds" (dict "digits" $frac "unit" $unit) | int64) }}
{{- $secs = add $secs (div $nanos 1000000000) }}
{{- $nanos = mod $nanos 1000000000 }}
{{- if or (gt $secs $boundSecs) (and (eq $secs $boundSecs) (gt $nanos $boundNanos)) }}
{{- $over = true }}
{{- break }}
{{- end }}
{{- end }}
{{- if not $over }}
{{- if $secs }}{{ printf "%d%09d" $secs $nanos }}{{ else }}{{ $nanos }}{{ end }}
{{- end }}
{{- end }}

{{/*
The whole nanoseconds a part's fraction stands for, as time.ParseDuration
counts them: "digits", those after the point (leading zeros too), of a
part of "unit" nanoseconds. Go's leadingFraction keeps the digits while
their number is at most 2^63 (the zeros before them count only in the
scale), dropping the rest. The string compare is that test: $sig has no
leading zero, so its first 19 digits, as many as 2^63's, compare as
numbers do (keep 19, or 18 past 2^63); shorter, it compares as strings
only, but has at most 18 digits, under 2^63, and is kept whole by
either. Go then multiplies, in float64, the number by unit/10^scale and
cuts it down to a whole nanosecond; here sprig's mulf multiplies the
shortest decimals of those floats exactly: the same where the digits stop
at the nanosecond; past it, a nanosecond off either way at most, which
ferry.durationProblem allows for (a fraction of ns aside: read alike,
see ferry.partsPastTheNanosecond).
*/}}
{{- define "ferry.fractionNanoseconds" -}}
{{- $sig := regexReplaceAll "^0+" .digits "" }}
{{- $keep := ternary 19 18 (le (substr 0 19 $sig) "9223372036854775808") }}
{{- $f := ternary $sig (substr 0 $keep $sig) (le (len $sig) $keep) }}
{{- if $f }}
{{- $scale := add (sub (len .digits) (len $sig)) (len $f) }}
{{- mulf (float64 $f) (float64 (printf "%de-%d" .unit $scale)) | floor | int64 }}
{{- else }}0
{{- end }}
{{- end }}

{{/*
What the agents make of a duration flag's value: "" where they take it;
"parse" where the flag package's Duration flag (time.ParseDuration) does
not read it, and says "parse error": past 2562047h47m16.854775807s
(2^63-1 ns), or, negative, past 2^63 ns; "negative" where it reads a
duration below zero (-0s is 0, taken), which the agents' check refuses
at their start for --drain-delay and --simulate-workers; "zero" where it
reads 0 (0, -0s, 0h0.0m), which some flags refuse. Read: 0, or numbers
each followed by a unit, ns, us, µs (U+00B5 or U+03BC), ms, s, m or h
(1.5s, .5h1m, 1.s), an optional sign before them.

Where it cannot tell: a part with digits past the nanosecond
(ferry.partsPastTheNanosecond) may be read a nanosecond either way of
ferry.nanoseconds' count, so with k such parts, within k ns of Go's
bound, the value is "unsure" (read or a parse error), and within k ns of
0 "unsureZero" (0 or above: 0.00000000000027777777777777775h, which Go
reads as 1ns) or, negative, "unsureNegative" (-0, which is 0, or below).
Go's bound is 2^63-1 ns, or 2^63 ns below zero, where a count up to
2^63+k ns may yet be read as -2^63 ns
(-2562047h47m16.854775808s0.00000000100000000000s, 2^63+1 ns here, is
-2^63 ns to Go) or not (-2562047h47m16.854775808s0.0000000015s, 2^63+1
ns here too, is a parse error): a negative count in (2^63-k, 2^63+k] is
"unsureLowest" (read at most 2^63 ns below zero, negative, or a parse
error), a positive one in (2^63-1-k, 2^63] "unsure", and one past 2^63+k
"parse". A positive count past 2^63 is "parse" whatever k: Go may yet
read one at most k ns past 2^63, but it needs two such parts or more to
come under 2^63-1 ns; the chart refuses it though Go might take it, a
value no one writing a duration means.
*/}}
{{- define "ferry.durationProblem" -}}
{{- $value := . }}
{{- $part := "([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)" }}
{{- $s := regexReplaceAll "^[-+]" $value "" }}
{{- $negative := hasPrefix "-" $value }}
{{- if eq $s "0" }}zero
{{- else if not (regexMatch (printf "^(%s)+$" $part) $s) }}parse
{{- else }}
{{- $past := include "ferry.partsPastTheNanosecond" $s | int64 }}
{{- /* Negative, counted on to $past ns past 2^63, where Go may yet read it as -2^63 ns. */}}
{{- $ns := include "ferry.nanoseconds" (dict "value" $s "slack" (ternary $past 0 $negative)) }}
{{- /*
Within $past ns of Go's bound, 2^63-1 ns, 2^63 below zero (past it too):
$ns is at most 2^63+$past, compared as a string at 19 digits. At a
$past of 0, 2^63-1-$past+1 would overflow int64: "and" stops before it
is computed.
*/}}
{{- $nearBound := and $past (eq (len $ns) 19) (gt $ns (printf "%d" (sub 9223372036854775807 $past | add (ternary 1 0 $negative)))) }}
{{- if $nearBound }}{{ ternary "unsureLowest" "unsure" $negative }}
{{- else if or (not $ns) (and (eq $ns "9223372036854775808") (not $negative)) }}parse
{{- /*
Near 0 a count is short. The length check is defensive: with $past at
least 1, every count past 2^63-$past was caught above as unsure, so none
here is past int64; it keeps int64 off a count of 19 digits or more,
which may not fit it, should the order of these checks change.
*/}}
{{- else if and $past (lt (len $ns) 19) (le ($ns | int64) $past) }}{{ ternary "unsureNegative" "unsureZero" $negative }}
{{- else if eq $ns "0" }}zero
{{- else if $negative }}negative
{{- end }}
{{- end }}
{{- end }}

{{/*
How many of a Go duration's parts have digits past the nanosecond, which
time.ParseDuration may round either way: a fraction longer than 3, 6,
9, 10 or 11 digits for us (µs, μs), ms, s, m or h (of ns, below). Up to
those, the fraction times the unit is a whole number of nanoseconds,
which Go's float64 holds exactly and ferry.nanoseconds counts exactly
(0.0000000001m is 6ns); past them Go's float64 product may fall a
hair either side of a whole nanosecond, and be cut down to the one below
it or not (0.00000000100000000000s is 0 to Go).

A fraction of ns is none, whatever its digits: under 1ns, Go's product
(its number and 1/10^digits in float64, multiplied in float64) is 1 or
cut to 0, and ferry.fractionNanoseconds' (the shortest decimals of the
same two floats, multiplied exactly, then in float64) comes to the same:
0.9999999999999999ns is 1ns to both, 0.1ns and 0.999999999999999ns 0.
A million fractions of 1 to 22 digits, half beginning with 14 nines or
more, were read alike by both.
*/}}
{{- define "ferry.partsPastTheNanosecond" -}}
{{- $digits := dict "us" 3 "µs" 3 "μs" 3 "ms" 6 "s" 9 "m" 10 "h" 11 }}
{{- $past := 0 }}
{{- range regexFindAll "[0-9.]+[^0-9.]+" . -1 }}
{{- $n := regexFind "^[0-9.]+" . }}
{{- $frac := regexFind "[0-9]*$" (regexFind "\\.[0-9]*$" $n) }}
{{- $unit := trimPrefix $n . }}
{{- if and (ne $unit "ns") (gt (len $frac) (get $digits $unit | int)) }}
{{- $past = add1 $past }}
{{- end }}
{{- end }}
{{- $past }}
{{- end }}

{{/*
A string quoted as the time package quotes it in its errors, which is
not strconv.Quote (nor sprig's quote): each byte from 0x20 to 0x7f as it
is, " and \ escaped with \, and every other byte, below 0x20 or of a
character past ASCII, as \xNN ("5µx" is "5\xc2\xb5x"). Its bytes in
lowercase hex, two digits each, compare as strings as they do as numbers.
*/}}
{{- define "ferry.goQuote" -}}
{{- $s := . }}
{{- $out := "" }}
{{- if $s }}
{{- range $i, $hex := splitList " " (printf "% x" $s) }}
{{- if or (lt $hex "20") (gt $hex "7f") }}{{ $out = printf "%s\\x%s" $out $hex }}
{{- else if or (eq $hex "22") (eq $hex "5c") }}{{ $out = printf "%s\\%s" $out (substr $i (add1 $i | int) $s) }}
{{- else }}{{ $out = print $out (substr $i (add1 $i | int) $s) }}
{{- end }}
{{- end }}
{{- end }}
{{- printf "\"%s\"" $out }}
{{- end }}

{{/*
What time.ParseDuration says of a value ferry.durationProblem calls
"parse" (a proxy timeout's flag quotes it), reading its parts left to
right as Go does and stopping at the first it refuses: one that is no
number, or whose whole number is past 2^63 ("invalid duration"); one
with no unit ("missing unit"), or a unit Go does not know ("unknown
unit"); one that takes the sum past 2^63 ns ("invalid duration", as
3000000h in 3000000h5x, before the x). Failing none of those, the whole
is too long ("invalid duration"). Quoted as Go quotes (ferry.goQuote).
Not followed: Go's wraparound, where two parts of exactly 2^63 ns each
(9223372036854775808ns9223372036854775808ns) sum to 2^64, which its
uint64 holds as 0, read without error as 0; the chart refuses it, which
no one writing a duration meant.
*/}}
{{- define "ferry.durationParseError" -}}
{{- $s := regexReplaceAll "^[-+]" . "" }}
{{- $err := "" }}
{{- $read := "" }}
{{- if $s }}
{{- range regexFindAll "[0-9]*(\\.[0-9]*)?[^0-9.]*" $s -1 }}
{{- $n := regexFind "^[0-9]*(\\.[0-9]*)?" . }}
{{- $unit := trimPrefix $n . }}
{{- $whole := regexReplaceAll "^0+" (regexFind "^[0-9]*" $n) "" }}
{{- if or (eq $n "") (eq $n ".") (gt (len $whole) 19) (and (eq (len $whole) 19) (gt $whole "9223372036854775808")) }}
{{- $err = "invalid" }}
{{- break }}
{{- else if eq $unit "" }}
{{- $err = printf "time: missing unit in duration %s" (include "ferry.goQuote" $) }}
{{- break }}
{{- else if not (has $unit (list "ns" "us" "µs" "μs" "ms" "s" "m" "h")) }}
{{- $err = printf "time: unknown unit %s in duration %s" (include "ferry.goQuote" $unit) (include "ferry.goQuote" $) }}
{{- break }}
{{- end }}
{{- $read = print $read . }}
{{- end }}
{{- end }}
{{- /*
Summed once, the parts before the refused one: the sum only grows, so
"" (past 2^63) means one of them took it past, where Go stopped first.
*/}}
{{- if or (not $err) (eq $err "invalid") (not (include "ferry.nanoseconds" $read)) }}
{{- $err = printf "time: invalid duration %s" (include "ferry.goQuote" .) }}
{{- end }}
{{- $err }}
{{- end }}

{{/*
Why this release may not be installed, when the cluster runs another
Ferry: its manager Deployment, this chart's (app.kubernetes.io/part-of:
ferry) or config/default's (app.kubernetes.io/name: ferry), of another
release or none. Two managers would both write every AppGroup's status.
Empty when there is none, and under `helm template` or a client-side dry
run, where lookup finds nothing.
*/}}
{{- define "ferry.otherInstallation" -}}
{{- range (lookup "apps/v1" "Deployment" "" "").items }}
{{- $labels := .metadata.labels | default dict }}
{{- $notes := .metadata.annotations | default dict }}
{{- $rel := get $notes "meta.helm.sh/release-name" }}
{{- $relNS := get $notes "meta.helm.sh/release-namespace" }}
{{- $ferry := or (eq (get $labels "app.kubernetes.io/part-of") "ferry") (eq (get $labels "app.kubernetes.io/name") "ferry") }}
{{- $own := and (eq $rel $.Release.Name) (eq $relNS $.Release.Namespace) }}
{{- if and $ferry (eq (get $labels "app.kubernetes.io/component") "manager") (not $own) }}
{{- $dep := printf "%s/%s" .metadata.namespace .metadata.name }}
{{- if $rel }}
{{- printf "Ferry is already installed in this cluster: Helm release %s in namespace %s runs its manager (Deployment %s). One Ferry per cluster: a second manager would write every AppGroup's status too, judging the nodes by Leases it does not have. Upgrade that release (helm upgrade %s -n %s), or uninstall it before installing this one" $rel $relNS $dep $rel $relNS }}
{{- else }}
{{- printf "Ferry is already installed in this cluster: its manager runs as Deployment %s, not a Helm release's (kubectl apply -k config/default makes it). One Ferry per cluster: a second manager would write every AppGroup's status too, judging the nodes by Leases it does not have. Remove that installation before installing this release, all but its CRDs (deleting a CRD deletes every AppGroup)" $dep }}
{{- end }}
{{- break }}
{{- end }}
{{- end }}
{{- end }}

{{/*
How to apply this chart's CRDs apart from it, which the refusals over the
cluster's CRDs (crds.enabled=false) say.
*/}}
{{- define "ferry.applyCRDs" -}}
kubectl apply --server-side -f ferry/files/crds/ after helm pull of this chart with --untar (or tar xzf of its package), -f charts/ferry/files/crds/ in a source checkout, or kubectl apply -k config/crd of this release (helm show crds lists none: the chart keeps them in files/, as templates, not in crds/)
{{- end }}

{{/*
CRDs (a list of names) as a message names them: "CRD a" or "CRDs a and b".
*/}}
{{- define "ferry.namedCRDs" -}}
{{- printf "%s %s" (ternary "CRD" "CRDs" (eq (len .) 1)) (join " and " .) }}
{{- end }}

{{/*
The names of Ferry's CRDs, space-separated: what the CRD checks look up.
*/}}
{{- define "ferry.crdNames" -}}
appgroups.ferry.dev processpools.ferry.dev
{{- end }}

{{/*
Why this release may not be upgraded with crds.enabled=false, when it
installed Ferry's CRDs (their meta.helm.sh/release-name and
-namespace name it) without helm.sh/resource-policy: keep (crds.keep
false): Helm deletes an object that its release's last manifest held and
the new one does not unless the live object has that annotation, and
deleting a CRD deletes every AppGroup and ProcessPool in it, stopping
every application. The absent-CRD check cannot see this: it runs before
Helm deletes anything, while the CRDs are there. Empty with crds.enabled,
at an install (Helm deletes nothing then), and under `helm template` or a
client-side dry run, where lookup finds nothing.
*/}}
{{- define "ferry.unkeptOwnCRDs" -}}
{{- if and (not .Values.crds.enabled) .Release.IsUpgrade }}
{{- $unkept := list }}
{{- range include "ferry.crdNames" . | splitList " " }}
{{- $notes := dig "metadata" "annotations" (dict) (lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" .) }}
{{- $own := and (eq (get $notes "meta.helm.sh/release-name") $.Release.Name) (eq (get $notes "meta.helm.sh/release-namespace") $.Release.Namespace) }}
{{- if and $own (ne (get $notes "helm.sh/resource-policy") "keep") }}{{ $unkept = append $unkept . }}{{ end }}
{{- end }}
{{- with $unkept }}
{{- printf "crds.enabled is false, and this release installed Ferry's %s without helm.sh/resource-policy: keep (crds.keep=false): Helm would delete them, gone from the chart, and with them every AppGroup and ProcessPool in the cluster, stopping every application. To manage the CRDs apart from the chart, keep them first: helm upgrade %s CHART -n %s --reuse-values --set crds.keep=true (CHART: this chart, as given to this upgrade), with crds.enabled still true, which marks them kept; then set crds.enabled=false. Or leave crds.enabled=true" (include "ferry.namedCRDs" .) $.Release.Name $.Release.Namespace }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"true" when lookup reads the cluster: it finds the namespace kube-system,
which the API server itself creates at its start and refuses to delete,
so that every cluster has it (a bare test API server too). Empty under
`helm template` or a client-side dry run, where every lookup finds
nothing. Not the release's namespace: `helm install --create-namespace`
creates that after rendering.
*/}}
{{- define "ferry.lookupIsLive" -}}
{{- if lookup "v1" "Namespace" "" "kube-system" }}true{{ end }}
{{- end }}

{{/*
Why this release may not be installed or upgraded, with crds.enabled=false,
in a cluster without Ferry's CRDs (appgroups.ferry.dev,
processpools.ferry.dev): the manager reconciles AppGroups and the agents
follow ProcessPools, which the API server would not serve. Empty with
crds.enabled (the chart brings them), when both are there, and where
lookup cannot read the cluster (ferry.lookupIsLive), which finds no CRD
either way.
*/}}
{{- define "ferry.absentCRDs" -}}
{{- if and (not .Values.crds.enabled) (include "ferry.lookupIsLive" .) }}
{{- $missing := list }}
{{- range include "ferry.crdNames" . | splitList " " }}
{{- if not (lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" .) }}{{ $missing = append $missing . }}{{ end }}
{{- end }}
{{- with $missing }}
{{- printf "crds.enabled is false, and this cluster lacks Ferry's %s: the manager reconciles AppGroups and the agents follow ProcessPools, which the API server would not serve, so that neither would work. Install the CRDs first, this chart's: %s; or set crds.enabled=true so that the chart installs them" (include "ferry.namedCRDs" .) (include "ferry.applyCRDs" $) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The versions of a ProcessPool CRD (the object, given: the cluster's or the
chart's) that declare spec.nodeName a selectable field, as a JSON list
(include returns text: fromJsonArray reads it back).
*/}}
{{- define "ferry.nodeNameSelectableIn" -}}
{{- $versions := list }}
{{- range .spec.versions }}
{{- $v := .name }}
{{- range .selectableFields | default list }}
{{- if eq .jsonPath ".spec.nodeName" }}{{ $versions = append $versions $v }}{{ end }}
{{- end }}
{{- end }}
{{- toJson $versions }}
{{- end }}

{{/*
Why this release may not be installed or upgraded, with crds.enabled=false,
against the cluster's ProcessPool CRD: it lacks the selectable field
spec.nodeName (selectableFields) in a version where this chart's CRD
declares it. The agents list their node's pools by that field; the API
server would refuse them, and each agent would follow no pool and stay not
Ready. With crds.enabled the chart brings its own CRD, so there is nothing
to check. Empty when the CRD is absent (ferry.absentCRDs says so), and
under `helm template` or a client-side dry run, where lookup finds nothing.
*/}}
{{- define "ferry.outdatedProcessPoolCRD" -}}
{{- if not .Values.crds.enabled }}
{{- $live := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" "processpools.ferry.dev" }}
{{- if $live }}
{{- $declared := include "ferry.nodeNameSelectableIn" $live | fromJsonArray }}
{{- $missing := list }}
{{- range include "ferry.nodeNameSelectableIn" ($.Files.Get "files/crds/ferry.dev_processpools.yaml" | fromYaml) | fromJsonArray }}
{{- if not (has . $declared) }}{{ $missing = append $missing . }}{{ end }}
{{- end }}
{{- with $missing }}
{{- printf "crds.enabled is false, and the ProcessPool CRD in this cluster (processpools.ferry.dev) lacks the selectable field spec.nodeName (in %s) that this chart's agents list their node's pools by: the API server would refuse them, and every agent would follow no pool and stay not Ready. Upgrade the CRDs first, to this chart's: %s; or set crds.enabled=true so that the chart upgrades them" (join ", " .) (include "ferry.applyCRDs" $) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
