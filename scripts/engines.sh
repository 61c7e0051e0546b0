#!/usr/bin/env bash
# Starts and stops a real Apache Kafka (KRaft) and a real Apache Cassandra 5.0 for Tally's
# distributed-mode tests: plain `java -cp` processes over jars Maven fetches from Maven Central
# (no Docker, no tarballs). What, why and the measured figures: docs/engines.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/engines.sh COMMAND
  up                 fetch jars (cached), start the engines, wait until each answers,
                     write $TALLY_ENGINES_HOME/env (KAFKA_BROKERS, CASSANDRA_CONTACT_POINTS, ...)
  down [--purge]     stop them by PID (TERM, then KILL after a grace period);
                     --purge also deletes $TALLY_ENGINES_HOME (data, logs, env)
  status             one line per engine; exit 0 only if every engine answers
  fetch [--purge]    fetch the jars into the cache; --purge drops the cached jars first
  kafka-tool TOOL [ARGS...]
                     run a Kafka CLI tool: topics, console-producer, console-consumer,
                     consumer-groups, api-versions, or a fully qualified main class
environment: ENGINES="kafka cassandra", TALLY_ENGINES_CACHE, TALLY_ENGINES_HOME and the
TALLY_* knobs listed in docs/engines.md
EOF
}

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$script_dir")"
templates_dir="$script_dir/engines"
pom="$templates_dir/pom.xml"

# ------------------------------------------------------------------------------ knobs --
pom_property() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$pom" | head -n 1; }

ENGINES="${ENGINES:-kafka cassandra}"
cache_dir="$(realpath -m "${TALLY_ENGINES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tally-engines}")"
home_dir="$(realpath -m "${TALLY_ENGINES_HOME:-$repo_dir/.tally-engines}")"
kafka_version="${TALLY_KAFKA_VERSION:-$(pom_property kafka.version)}"
cassandra_version="${TALLY_CASSANDRA_VERSION:-$(pom_property cassandra.version)}"
# TALLY_-prefixed on purpose: Kubernetes and docker links inject KAFKA_PORT=tcp://... themselves
kafka_port="${TALLY_KAFKA_PORT:-9092}"
kafka_controller_port="${TALLY_KAFKA_CONTROLLER_PORT:-9093}"
cassandra_port="${TALLY_CASSANDRA_PORT:-9042}"
cassandra_storage_port="${TALLY_CASSANDRA_STORAGE_PORT:-7000}"
# heap and any extra JVM option, appended last (so -Xmx here wins)
kafka_jvm_extra="${TALLY_KAFKA_JVM_OPTIONS:--Xms256m -Xmx512m}"
cassandra_jvm_extra="${TALLY_CASSANDRA_JVM_OPTIONS:--Xms256m -Xmx1g}"
start_timeout_s="${TALLY_ENGINES_START_TIMEOUT_S:-180}"
stop_grace_s="${TALLY_ENGINES_STOP_GRACE_S:-30}"
fresh="${TALLY_ENGINES_FRESH:-1}"          # 1: an engine that is not running starts on empty data
mvn="${TALLY_ENGINES_MVN:-mvn}"
probe_timeout_s=3                          # one readiness probe; the JVMs answer in milliseconds
kill_wait_s=10                             # after SIGKILL, how long until the process must be gone
exec_wait_ds=50                            # tenths of a second from fork to the JVM's exec
java_major_required=17                     # Kafka 4 needs >= 17; Cassandra 5.0 runs on 11 or 17 only
cassandra_local_dc=datacenter1             # what SimpleSnitch reports

pom_hash="$(sha256sum "$pom" | cut -c 1-8)" # a changed pom gets fresh cache directories
kafka_lib="$cache_dir/kafka-$kafka_version-$pom_hash"
kafka_tools_lib="$cache_dir/kafka-tools-$kafka_version-$pom_hash"
cassandra_lib="$cache_dir/cassandra-$cassandra_version-$pom_hash"
run_dir="$home_dir/run"; logs_dir="$home_dir/logs"; data_dir="$home_dir/data"
conf_dir="$home_dir/conf"; tmp_dir="$home_dir/tmp"   # tmp: native libs unpack here, must allow exec

log() { printf '[engines %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
wants() { case " $ENGINES " in *" $1 "*) return 0 ;; esac; return 1; }

check_engine_names() {
  local name
  [ -n "${ENGINES// /}" ] || die "ENGINES is empty (use: kafka, cassandra or both)"
  for name in $ENGINES; do
    case $name in kafka | cassandra) ;; *) die "unknown engine '$name' in ENGINES (kafka, cassandra)" ;; esac
  done
}

# ------------------------------------------------------------------------------- java --
java_major() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p'; }

pick_java() {
  if [ -n "${TALLY_ENGINES_JAVA:-}" ]; then
    java="$TALLY_ENGINES_JAVA"
    [ "$(java_major "$java")" = "$java_major_required" ] || log "warning: $java is not Java $java_major_required"
    return 0
  fi
  local candidate
  for candidate in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" /usr/lib/jvm/*-17-*/bin/java; do
    [ -x "$candidate" ] || continue
    if [ "$(java_major "$candidate")" = "$java_major_required" ]; then java="$candidate"; return 0; fi
  done
  die "no Java $java_major_required found (Kafka 4 needs >= 17, Cassandra 5.0 runs on 11 or 17 only); set TALLY_ENGINES_JAVA"
}

# ---------------------------------------------------------------------------- fetching --
fetch_profile() { # profile version directory required-jar-glob...
  local profile=$1 version=$2 directory=$3 glob; shift 3
  [ -f "$directory/.complete" ] && return 0
  command -v "$mvn" >/dev/null || die "maven ('$mvn') not found; set TALLY_ENGINES_MVN"
  mkdir -p "$cache_dir"
  (
    if command -v flock >/dev/null; then flock 9; fi # parallel jobs sharing one cache fetch once
    [ -f "$directory/.complete" ] && exit 0
    log "fetching $profile $version jars into $directory"
    rm -rf "$directory.partial"
    # Debian's maven 3.8 prints colour resets even with -q -B: strip them, keep real messages
    "$mvn" -q -B -f "$pom" -P "$profile" -D"${profile%-tools}.version=$version" \
      dependency:copy-dependencies -DoutputDirectory="$directory.partial" 2>&1 |
      sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2 ||
      die "maven could not fetch the $profile jars (output above)"
    for glob in "$@"; do
      compgen -G "$directory.partial/$glob" >/dev/null || die "no $glob among the fetched $profile jars"
    done
    touch "$directory.partial/.complete"
    rm -rf "$directory" && mv "$directory.partial" "$directory"
  ) 9>"$cache_dir/.lock"
}

fetch() {
  if wants kafka; then
    fetch_profile kafka "$kafka_version" "$kafka_lib" 'kafka_2.13-*.jar' 'log4j-slf4j-impl-*.jar'
  fi
  if wants cassandra; then
    fetch_profile cassandra "$cassandra_version" "$cassandra_lib" 'cassandra-all-*.jar' 'jamm-*.jar'
  fi
}

purge_cache() {
  local name
  for name in $ENGINES; do
    log "dropping cached $name jars"
    rm -rf "${cache_dir:?}/$name"-*
  done
}

# ---------------------------------------------------------------------------- processes --
engine_ports() {
  case $1 in
    kafka) echo "$kafka_port $kafka_controller_port" ;;
    cassandra) echo "$cassandra_port $cassandra_storage_port" ;;
  esac
}

main_class() {
  case $1 in
    kafka) echo kafka.Kafka ;;
    cassandra) echo org.apache.cassandra.service.CassandraDaemon ;;
  esac
}

# Prints the PID when the engine runs. The command line must still name the engine's main
# class: that rejects a recycled PID and a zombie (whose command line is empty).
engine_pid() {
  local file="$run_dir/$1.pid" pid
  [ -f "$file" ] || return 1
  pid="$(<"$file")"
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF " $(main_class "$1") " || return 1
  fi
  echo "$pid"
}

record_pid() { # name pid: wait until the forked shell has exec'ed the JVM, so engine_pid sees it
  local name=$1 pid=$2 waited_ds=0
  launched_ms[$name]=$(now_ms)
  echo "$pid" >"$run_dir/$name.pid"
  while ! engine_pid "$name" >/dev/null && kill -0 "$pid" 2>/dev/null && ((waited_ds < exec_wait_ds)); do
    sleep 0.1
    waited_ds=$((waited_ds + 1))
  done
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_ports() { # before starting anything: every engine that must start needs its ports
  local name port
  for name in $ENGINES; do
    engine_pid "$name" >/dev/null && continue
    for port in $(engine_ports "$name"); do
      if port_taken "$port"; then
        die "cannot start $name: 127.0.0.1:$port is taken by another process (ss -ltnp 'sport = :$port'); set TALLY_*_PORT"
      fi
    done
  done
}

render() { # template destination engine-data-directory: replaces the @NAME@ placeholders
  local escaped_data
  escaped_data="$(printf '%s' "$3" | sed 's/[\\|&]/\\&/g')"
  sed -e "s|@DATA_DIR@|$escaped_data|g" \
    -e "s|@KAFKA_PORT@|$kafka_port|g" -e "s|@KAFKA_CONTROLLER_PORT@|$kafka_controller_port|g" \
    -e "s|@CASSANDRA_PORT@|$cassandra_port|g" -e "s|@CASSANDRA_STORAGE_PORT@|$cassandra_storage_port|g" \
    "$1" >"$2"
}

# -------------------------------------------------------------------------------- probes --
# Kafka: a Metadata v4 request (not flexible, still served by 4.x after KIP-896). The broker
# opens its client listener only once started, and lists itself once registered: >= 1 broker.
kafka_answers() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$kafka_port" || exit 1
    # size 22 | api key 3 | version 4 | correlation id 0x7a11 | client id "engines" | all topics | no auto-create
    printf '\x00\x00\x00\x16\x00\x03\x00\x04\x00\x00\x7a\x11\x00\x07engines\xff\xff\xff\xff\x00' >&3
    # reply: size | correlation id | throttle time | broker count
    reply="$(timeout "$probe_timeout_s" head -c 16 <&3 | od -An -v -tx1 | tr -d ' \n')"
    [ "${#reply}" = 32 ] && [ "${reply:8:8}" = 00007a11 ] && [ $((16#${reply:24:8})) -ge 1 ]
  ) 2>/dev/null
}

# Cassandra: CQL native protocol v4 STARTUP -> READY, then QUERY "SELECT release_version FROM
# system.local" -> RESULT (doc/native_protocol_v4.spec). Prints the release version.
cassandra_answers() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$cassandra_port" || exit 1
    # version 4 | flags 0 | stream 1 | STARTUP | length 22 | {"CQL_VERSION": "3.0.0"}
    printf '\x04\x00\x00\x01\x01\x00\x00\x00\x16\x00\x01\x00\x0bCQL_VERSION\x00\x053.0.0' >&3
    reply="$(timeout "$probe_timeout_s" head -c 9 <&3 | od -An -v -tx1 | tr -d ' \n')"
    [ "${reply:0:2}" = 84 ] && [ "${reply:4:6}" = 000102 ] || exit 1 # response v4, stream 1, READY
    # stream 2 | QUERY | length 47 | [long string] query (40 bytes) | consistency ONE | no flags
    printf '\x04\x00\x00\x02\x07\x00\x00\x00\x2f\x00\x00\x00\x28%s\x00\x01\x00' \
      'SELECT release_version FROM system.local' >&3
    reply="$(timeout "$probe_timeout_s" head -c 9 <&3 | od -An -v -tx1 | tr -d ' \n')"
    [ "${reply:0:2}" = 84 ] && [ "${reply:4:6}" = 000208 ] || exit 1 # response v4, stream 2, RESULT
    timeout "$probe_timeout_s" head -c "$((16#${reply:10:8}))" <&3 |
      tr -c '[:print:]' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+' | tail -n 1
  ) 2>/dev/null
}

now_ms() { local microseconds=${EPOCHREALTIME//[.,]/}; echo $((microseconds / 1000)); }

declare -A launched_ms=() # engine -> when this run launched its JVM

since_launch() { # name: "N.N s after launch" when this run launched the engine
  local launched=${launched_ms[$1]:-} elapsed
  [ -n "$launched" ] || return 0
  elapsed=$(($(now_ms) - launched))
  printf ' %d.%d s after launch' $((elapsed / 1000)) $((elapsed % 1000 / 100))
}

wait_ready() { # name probe
  local name=$1 probe=$2 started=$SECONDS answer
  while ((SECONDS - started < start_timeout_s)); do
    if ! engine_pid "$name" >/dev/null; then
      log "$name exited during startup; log: $logs_dir/$name.log"
      tail -n 40 "$logs_dir/$name.log" >&2 || true
      return 1
    fi
    if answer="$("$probe")"; then
      log "$name answers${answer:+ (release $answer)}$(since_launch "$name")"
      return 0
    fi
    sleep 0.5
  done
  log "$name did not answer within $start_timeout_s s; log: $logs_dir/$name.log"
  tail -n 40 "$logs_dir/$name.log" >&2 || true
  return 1
}

# --------------------------------------------------------------------------------- kafka --
kafka_system_properties() {
  printf '%s\n' "-Dlog4j2.configurationFile=$conf_dir/kafka-log4j2.properties" "-Dkafka.logs.dir=$logs_dir" \
    "-Djava.io.tmpdir=$tmp_dir" "-DZstdTempFolder=$tmp_dir" "-Dorg.xerial.snappy.tempdir=$tmp_dir"
}

kafka_jvm_options() { # GC flags from Kafka's bin/kafka-run-class.sh; the knob comes last and wins
  printf '%s\n' -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
  kafka_system_properties
  # shellcheck disable=SC2086 # the JVM options knob is a word list on purpose
  printf '%s\n' $kafka_jvm_extra
}

start_kafka() {
  local pid options=() properties=() cluster_id
  if pid="$(engine_pid kafka)"; then log "kafka already running (pid $pid)"; return 0; fi
  mkdir -p "$data_dir/kafka"
  render "$templates_dir/kafka/server.properties" "$conf_dir/kafka-server.properties" "$data_dir/kafka"
  cp "$templates_dir/kafka/log4j2.properties" "$conf_dir/kafka-log4j2.properties"
  mapfile -t options < <(kafka_jvm_options)
  mapfile -t properties < <(kafka_system_properties)
  if [ ! -f "$data_dir/kafka/meta.properties" ]; then
    # cluster id: 16 random bytes in unpadded base64url, the format of Kafka's Uuid
    # (drawn again while it starts with '-': the tool's argument parser would take it for an option)
    cluster_id="-"
    while [ "${cluster_id#-}" != "$cluster_id" ]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    "$java" -Xmx256m "${properties[@]}" -cp "$kafka_lib/*" kafka.tools.StorageTool format \
      --cluster-id "$cluster_id" --config "$conf_dir/kafka-server.properties" --ignore-formatted \
      >"$logs_dir/kafka-format.log" 2>&1 ||
      { tail -n 40 "$logs_dir/kafka-format.log" >&2; die "formatting the kafka storage failed"; }
  fi
  log "starting kafka $kafka_version on 127.0.0.1:$kafka_port"
  nohup "$java" "${options[@]}" -cp "$kafka_lib/*" kafka.Kafka "$conf_dir/kafka-server.properties" \
    >"$logs_dir/kafka.log" 2>&1 </dev/null &
  record_pid kafka $!
}

# ----------------------------------------------------------------------------- cassandra --
cassandra_jvm_options() {
  local jamm javac_dir
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$templates_dir/cassandra/jvm17.options"
  # bin/cassandra.in.sh adds these only when the JDK has a compiler (the module must exist)
  javac_dir="$(dirname "$(readlink -f "$java")")"
  if [ -x "$javac_dir/javac" ]; then
    printf '%s\n' --add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED \
      --add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED \
      --add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  fi
  # Without the jamm agent, memory measurement reflects into JDK internals and fails.
  # skip_sync (no fsync) and unsafesystem (no flush of system tables after each schema change)
  # make CREATE/DROP in test setup 4-6x faster; a killed JVM still loses nothing, because
  # written data sits in the page cache; only a kernel crash could lose it.
  jamm="$(compgen -G "$cassandra_lib/jamm-*.jar" | head -n 1)"
  printf '%s\n' "-javaagent:$jamm" \
    "-Dcassandra.config=file://$conf_dir/cassandra.yaml" \
    "-Dlogback.configurationFile=$conf_dir/cassandra-logback.xml" \
    "-Dcassandra.logdir=$logs_dir/cassandra" "-Dcassandra.storagedir=$data_dir/cassandra" \
    -Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.skip_sync=true -Dcassandra.unsafesystem=true \
    "-Djava.io.tmpdir=$tmp_dir" "-Djna.tmpdir=$tmp_dir" "-Dorg.xerial.snappy.tempdir=$tmp_dir" \
    "-DZstdTempFolder=$tmp_dir"
  # shellcheck disable=SC2086 # the JVM options knob is a word list on purpose
  printf '%s\n' $cassandra_jvm_extra # last, so that it wins
}

start_cassandra() {
  local pid options=()
  if pid="$(engine_pid cassandra)"; then log "cassandra already running (pid $pid)"; return 0; fi
  mkdir -p "$data_dir/cassandra" "$logs_dir/cassandra"
  render "$templates_dir/cassandra/cassandra.yaml" "$conf_dir/cassandra.yaml" "$data_dir/cassandra"
  cp "$templates_dir/cassandra/logback.xml" "$conf_dir/cassandra-logback.xml"
  mapfile -t options < <(cassandra_jvm_options)
  log "starting cassandra $cassandra_version on 127.0.0.1:$cassandra_port"
  # MALLOC_ARENA_MAX: conf/cassandra-env.sh caps glibc arenas, which otherwise inflate the RSS
  MALLOC_ARENA_MAX=4 nohup "$java" "${options[@]}" -cp "$cassandra_lib/*" "$(main_class cassandra)" \
    >"$logs_dir/cassandra.log" 2>&1 </dev/null &
  record_pid cassandra $!
}

# ------------------------------------------------------------------------------ commands --
write_env() { # for every engine that runs, whichever ENGINES started it
  local file="$home_dir/env"
  {
    echo "# written by scripts/engines.sh: the engines running at that moment; source it or use node --env-file"
    if engine_pid kafka >/dev/null; then echo "KAFKA_BROKERS=127.0.0.1:$kafka_port"; fi
    if engine_pid cassandra >/dev/null; then
      echo "CASSANDRA_CONTACT_POINTS=127.0.0.1:$cassandra_port"
      echo "CASSANDRA_LOCAL_DC=$cassandra_local_dc"
    fi
  } >"$file.partial"
  mv "$file.partial" "$file"
}

cmd_up() {
  local name failed=()
  pick_java
  fetch
  require_free_ports
  mkdir -p "$run_dir" "$logs_dir" "$data_dir" "$conf_dir" "$tmp_dir"
  cd "$home_dir" # the JVMs' working directory: crash files (hs_err_pid*.log) land here
  for name in $ENGINES; do
    if [ "$fresh" = 1 ] && ! engine_pid "$name" >/dev/null; then rm -rf "${data_dir:?}/$name"; fi
  done
  # Cassandra first: it is the slower one, and both JVMs then warm up side by side
  if wants cassandra; then start_cassandra; fi
  if wants kafka; then start_kafka; fi
  if wants kafka && ! wait_ready kafka kafka_answers; then failed+=(kafka); fi
  if wants cassandra && ! wait_ready cassandra cassandra_answers; then failed+=(cassandra); fi
  if [ "${#failed[@]}" -gt 0 ]; then
    ENGINES="${failed[*]}" stop_engines
    write_env
    die "not ready: ${failed[*]} (stopped; logs in $logs_dir)"
  fi
  write_env
  log "ready; environment in $home_dir/env"
  grep -v '^#' "$home_dir/env"
}

stop_engines() { # TERM all, wait for all, then KILL what is left
  local name pid deadline stopping=()
  for name in $ENGINES; do
    if pid="$(engine_pid "$name")"; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      stopping+=("$name")
    else
      log "$name is not running"
      rm -f "$run_dir/$name.pid"
    fi
  done
  deadline=$((SECONDS + stop_grace_s))
  for name in "${stopping[@]}"; do
    while engine_pid "$name" >/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    if pid="$(engine_pid "$name")"; then
      log "$name still running after $stop_grace_s s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local killed_at=$SECONDS
      while engine_pid "$name" >/dev/null; do
        ((SECONDS - killed_at < kill_wait_s)) || die "$name (pid $pid) survived SIGKILL"
        sleep 0.5
      done
    fi
    rm -f "$run_dir/$name.pid"
    log "$name stopped"
  done
}

cmd_down() {
  local name
  stop_engines
  if [ "${1:-}" = --purge ]; then
    for name in kafka cassandra; do
      if engine_pid "$name" >/dev/null; then die "not purging $home_dir: $name still runs (ENGINES=\"$ENGINES\")"; fi
    done
    rm -rf "$home_dir"
    log "purged $home_dir"
  elif [ -d "$home_dir" ]; then
    write_env
  fi
}

cmd_status() {
  local name pid port probe answer status=0
  for name in $ENGINES; do
    case $name in
      kafka) port=$kafka_port probe=kafka_answers ;;
      cassandra) port=$cassandra_port probe=cassandra_answers ;;
    esac
    if ! pid="$(engine_pid "$name")"; then
      echo "$name: stopped"; status=1
    elif answer="$("$probe")"; then
      echo "$name: running (pid $pid), answers on 127.0.0.1:$port${answer:+ (release $answer)}"
    else
      echo "$name: running (pid $pid), NOT answering on 127.0.0.1:$port; log: $logs_dir/$name.log"
      status=1
    fi
  done
  return "$status"
}

cmd_kafka_tool() {
  local tool=${1:-} class
  case $tool in
    topics) class=org.apache.kafka.tools.TopicCommand ;;
    console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
    console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    api-versions) class=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    *.*) class=$tool ;;
    *) die "kafka-tool needs a tool: topics, console-producer, console-consumer, consumer-groups, api-versions or a main class" ;;
  esac
  shift
  pick_java
  fetch_profile kafka-tools "$kafka_version" "$kafka_tools_lib" 'kafka-tools-*.jar'
  exec "$java" -Xmx256m "-Dlog4j2.configurationFile=$templates_dir/kafka/tools-log4j2.properties" \
    -cp "$kafka_tools_lib/*" "$class" "$@"
}

main() {
  local command=${1:-}
  [ "$#" -gt 0 ] && shift
  case $command in
    up | down | status | fetch) check_engine_names ;;
  esac
  case $command in
    up) [ "$#" = 0 ] || die "up takes no arguments"; cmd_up ;;
    down) [ "$#" = 0 ] || [ "$*" = --purge ] || die "down takes only --purge"; cmd_down "$@" ;;
    status) cmd_status ;;
    fetch)
      [ "$#" = 0 ] || [ "$*" = --purge ] || die "fetch takes only --purge"
      if [ "${1:-}" = --purge ]; then purge_cache; fi
      fetch
      ;;
    kafka-tool) cmd_kafka_tool "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
