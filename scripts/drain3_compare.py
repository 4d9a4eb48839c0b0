#!/usr/bin/env python3
"""Times Drain3 (default configuration) on the Content of the 16 Loghub 2k
samples, split off with the benchmark's header formats exactly as Loghub's
loader does (generate_logformat_regex), for scripts/drain3-compare.sh.

Prints one line per system and a total, as
  <system> <lines> <cold seconds> <warm seconds> <templates>
where cold is one pass of add_log_message with a new TemplateMiner (templates
created on the way) and warm a second pass over the same lines with the same
miner. Only mining is timed; reading and splitting the files is not.
"""
import os
import re
import sys
import time

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

# The Loghub benchmark settings' formats; the same table as
# ingest/logtemplate/loghub_test.go.
FORMATS = [
    ("HDFS", r"<Date> <Time> <Pid> <Level> <Component>: <Content>"),
    ("Hadoop", r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>"),
    ("Spark", r"<Date> <Time> <Level> <Component>: <Content>"),
    ("Zookeeper", r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>"),
    ("BGL", r"<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>"),
    ("HPC", r"<LogId> <Node> <Component> <State> <Time> <Flag> <Content>"),
    ("Thunderbird", r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>"),
    ("Windows", r"<Date> <Time>, <Level>                  <Component>    <Content>"),
    ("Linux", r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>"),
    ("Android", r"<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>"),
    ("HealthApp", r"<Time>\|<Component>\|<Pid>\|<Content>"),
    ("Apache", r"\[<Time>\] \[<Level>\] <Content>"),
    ("Proxifier", r"\[<Time>\] <Program> - <Content>"),
    ("OpenSSH", r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>"),
    ("OpenStack", r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>"),
    ("Mac", r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>"),
]


def generate_logformat_regex(logformat):
    """As logparser's loader: text between fields is a regex, runs of spaces
    become \\s+, each field a lazy named group, anchored."""
    headers = []
    splitters = re.split(r"(<[^<>]+>)", logformat)
    regex = ""
    for k, s in enumerate(splitters):
        if k % 2 == 0:
            regex += re.sub(" +", "\\\\s+", s)
        else:
            header = s.strip("<").strip(">")
            regex += "(?P<%s>.*?)" % header
            headers.append(header)
    return headers, re.compile("^" + regex + "$")


def contents(data_dir, system, fmt):
    _, regex = generate_logformat_regex(fmt)
    out = []
    path = os.path.join(data_dir, "loghub", system, system + "_2k.log")
    with open(path, "r", encoding="utf8", errors="ignore") as f:
        for line in f:
            m = regex.search(line.strip())
            if m:
                out.append(m.group("Content"))
    return out


def main():
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
    tot_lines, tot_cold, tot_warm = 0, 0.0, 0.0
    for system, fmt in FORMATS:
        lines = contents(data_dir, system, fmt)
        cfg = TemplateMinerConfig()  # Drain3's defaults; no drain3.ini is read
        miner = TemplateMiner(config=cfg)
        t0 = time.perf_counter()
        for c in lines:
            miner.add_log_message(c)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        for c in lines:
            miner.add_log_message(c)
        warm = time.perf_counter() - t0
        print("%s %d %.6f %.6f %d" % (system, len(lines), cold, warm, len(miner.drain.clusters)))
        tot_lines += len(lines)
        tot_cold += cold
        tot_warm += warm
    print("TOTAL %d %.6f %.6f" % (tot_lines, tot_cold, tot_warm))


if __name__ == "__main__":
    main()
