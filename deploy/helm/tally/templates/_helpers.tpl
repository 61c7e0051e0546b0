{{/* Names and labels shared by every resource. */}}
{{- define "tally.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tally.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one role: call with (dict "root" $ "role" "collector"). */}}
{{- define "tally.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "tally.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "tally.adminTokenSecret" -}}
{{- .Values.adminToken.existingSecret | default (printf "%s-admin-token" (include "tally.fullname" .)) -}}
{{- end -}}

{{/* The refusal to deploy more processors than the events topic has partitions. */}}
{{- define "tally.checkProcessorReplicas" -}}
{{- if gt (int .Values.processor.replicas) (int .Values.kafka.eventsPartitions) -}}
{{- fail (printf "processor.replicas (%d) exceeds kafka.eventsPartitions (%d): each partition has one consumer, so the extra processors would idle. Lower the replicas, or create the topic with more partitions." (int .Values.processor.replicas) (int .Values.kafka.eventsPartitions)) -}}
{{- end -}}
{{- end -}}

{{/* Settings every role and the migrate Job share (the TALLY_* names of src/config/config.ts). */}}
{{- define "tally.env" -}}
- name: TALLY_HOST
  value: "0.0.0.0"
- name: TALLY_PORT
  value: "8080"
- name: TALLY_DATA_DIR
  value: /data
- name: TALLY_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: TALLY_KAFKA_BROKERS
  value: {{ required "kafka.brokers is required" .Values.kafka.brokers | quote }}
- name: TALLY_KAFKA_CLIENT_ID
  value: {{ .Values.kafka.clientId | quote }}
{{- if .Values.kafka.namespace }}
- name: TALLY_KAFKA_NAMESPACE
  value: {{ .Values.kafka.namespace | quote }}
{{- end }}
- name: TALLY_EVENTS_PARTITIONS
  value: {{ .Values.kafka.eventsPartitions | quote }}
- name: TALLY_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: TALLY_KAFKA_MIN_INSYNC_REPLICAS
  value: {{ .Values.kafka.minInsyncReplicas | quote }}
- name: TALLY_CASSANDRA_CONTACT_POINTS
  value: {{ required "cassandra.contactPoints is required" .Values.cassandra.contactPoints | quote }}
- name: TALLY_CASSANDRA_DC
  value: {{ .Values.cassandra.dc | quote }}
- name: TALLY_CASSANDRA_KEYSPACE
  value: {{ .Values.cassandra.keyspace | quote }}
- name: TALLY_CASSANDRA_REPLICATION
  value: {{ .Values.cassandra.replication | quote }}
- name: TALLY_CASSANDRA_CONSISTENCY
  value: {{ .Values.cassandra.consistency | quote }}
{{- if .Values.cassandra.credentials.existingSecret }}
- name: TALLY_CASSANDRA_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.cassandra.credentials.existingSecret }}
      key: {{ .Values.cassandra.credentials.usernameKey }}
- name: TALLY_CASSANDRA_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.cassandra.credentials.existingSecret }}
      key: {{ .Values.cassandra.credentials.passwordKey }}
{{- end }}
{{- if .Values.redis.url }}
- name: TALLY_REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Writable scratch space under a read-only root filesystem. */}}
{{- define "tally.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "tally.volumeMounts" -}}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- end -}}
