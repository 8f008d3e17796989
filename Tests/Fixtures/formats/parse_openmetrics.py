"""Parses OpenMetrics text from stdin with prometheus_client's OpenMetrics parser
(which checks the whole page: # EOF, names, types, escaping, histogram buckets)
and prints one line per sample: `name labels value [exemplar]`. Exits 1 when
the parser refuses the page."""
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families

try:
    for family in text_string_to_metric_families(sys.stdin.read()):
        print("# %s %s %r" % (family.name, family.type, family.documentation))
        for s in family.samples:
            labels = ",".join("%s=%r" % kv for kv in sorted(s.labels.items()))
            line = "%s{%s} %r" % (s.name, labels, s.value)
            if s.exemplar is not None:
                ex = ",".join("%s=%r" % kv for kv in sorted(s.exemplar.labels.items()))
                line += " # {%s} %r %r" % (ex, s.exemplar.value, s.exemplar.timestamp)
            print(line)
except Exception as e:
    sys.exit("refused: %s" % e)
