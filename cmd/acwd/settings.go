package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A setting is one configuration value that can come from its default,
// the YAML config file (key, a dotted path such as
// "pipeline.flush_interval"), the environment (ACW_ and the flag name in
// upper case with - as _, such as ACW_FLUSH_INTERVAL) or the command line
// (--flag). Later sources win: default < file < environment < flag.
type setting struct {
	flag   string
	key    string
	def    string
	help   string
	isBool bool
	// plain: printed unquoted (numbers, booleans); list: printed as a
	// YAML sequence.
	plain, list bool
	// mask, if set, hides secrets in what config check prints.
	mask func(string) string
	set  func(string) error

	// value and source are the effective value and where it came from
	// ("default", "file FILE line N", "env ACW_…", "flag --…").
	value, source string
	// cli is the value given on the command line, if any.
	cli    string
	cliSet bool
}

func (s *setting) env() string {
	return "ACW_" + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_"))
}

// settings is an ordered set of settings plus the special ones: the
// config file's path (--config / ACW_CONFIG) and the per-team and
// per-queue thresholds (file only).
type settings struct {
	list       []*setting
	configPath string
	// extra are file sections decoded by their own code: key → decode.
	extra map[string]func(n *yaml.Node) error
	// extraSeen records the extra sections the file set, for print.
	extraSeen []row
}

// row is one printed setting.
type row struct{ key, value, source string }

func (ss *settings) add(flag, key, def, help string, set func(string) error) *setting {
	s := &setting{flag: flag, key: key, def: def, help: help, set: set}
	ss.list = append(ss.list, s)
	return s
}

// setDefault gives the setting of flag another default: acwd demo shares
// run's settings with defaults of its own.
func (ss *settings) setDefault(flag, def string) {
	for _, s := range ss.list {
		if s.flag == flag {
			s.def = def
			return
		}
	}
	panic("setDefault: no setting --" + flag)
}

// sourceOf says where the effective value of flag's setting came from
// ("default", "env …", "file …", "flag …"), after load.
func (ss *settings) sourceOf(flag string) string {
	for _, s := range ss.list {
		if s.flag == flag {
			return s.source
		}
	}
	return ""
}

// str adds a string setting; with allowed values, any other is an error.
func (ss *settings) str(p *string, flag, key, def, help string, allowed ...string) *setting {
	if len(allowed) > 0 {
		help += " (" + strings.Join(allowed, ", ") + ")"
	}
	return ss.add(flag, key, def, help, func(v string) error {
		if len(allowed) > 0 && !slices.Contains(allowed, v) {
			return fmt.Errorf("want one of %s, got %q", strings.Join(allowed, ", "), v)
		}
		*p = v
		return nil
	})
}

// list adds a comma-separated list setting (a YAML sequence in the file);
// empty elements are dropped.
func (ss *settings) strList(p *[]string, flag, key, def, help string, nonEmpty bool) *setting {
	s := ss.add(flag, key, def, help, func(v string) error {
		l := splitList(v)
		if nonEmpty && len(l) == 0 {
			return errors.New("must not be empty")
		}
		*p = l
		return nil
	})
	s.list = true
	return s
}

// dur adds a duration setting ("250ms", "2s", "48h") of at least min.
func (ss *settings) dur(p *time.Duration, flag, key, def, help string, min time.Duration) *setting {
	return ss.add(flag, key, def, help, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("want a duration such as 250ms, 30s or 48h, got %q", v)
		}
		if d < min {
			return fmt.Errorf("must be at least %s, got %s", min, d)
		}
		*p = d
		return nil
	})
}

// num adds an integer setting of at least min.
func (ss *settings) num(p *int, flag, key, def, help string, min int) *setting {
	s := ss.add(flag, key, def, help, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", v)
		}
		if n < min {
			return fmt.Errorf("must be at least %d, got %d", min, n)
		}
		*p = n
		return nil
	})
	s.plain = true
	return s
}

// boolean adds a true/false setting.
func (ss *settings) boolean(p *bool, flag, key, def, help string) *setting {
	s := ss.add(flag, key, def, help, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*p = b
		return nil
	})
	s.isBool, s.plain = true, true
	return s
}

// flagValue records what the command line says; settings apply it last.
type flagValue struct{ s *setting }

func (f flagValue) String() string {
	if f.s == nil {
		return ""
	}
	return f.s.def
}

func (f flagValue) Set(v string) error {
	// Check the value now so that flag errors name the flag; apply later.
	if err := f.s.set(v); err != nil {
		return err
	}
	f.s.cli, f.s.cliSet = v, true
	return nil
}

func (f flagValue) IsBoolFlag() bool { return f.s != nil && f.s.isBool }

// secret hides the whole value (when set) in config check's output.
func secret(v string) string {
	if v == "" {
		return ""
	}
	return "***"
}

// getenv reads the environment (a variable so that tests can stub it).
var getenv = os.Getenv

// parseSettings registers ss on fs, parses args and applies every source.
func parseSettings(fs *flag.FlagSet, ss *settings, args []string) error {
	ss.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return ss.load(getenv)
}

// register adds --config and every setting to fs. The help of each names
// its default, its environment variable and its config-file key.
func (ss *settings) register(fs *flag.FlagSet) {
	fs.StringVar(&ss.configPath, "config", "", "YAML config file; its values are overridden by ACW_… environment variables and by flags (env ACW_CONFIG)")
	for _, s := range ss.list {
		fs.Var(flagValue{s}, s.flag, fmt.Sprintf("%s (env %s, file %s)", s.help, s.env(), s.key))
	}
}

// load applies, in order, every setting's default, the config file, the
// environment and the command line. Errors name the setting and source.
func (ss *settings) load(getenv func(string) string) error {
	for _, s := range ss.list {
		if err := s.set(s.def); err != nil {
			return fmt.Errorf("default of --%s %q: %v", s.flag, s.def, err) // a bug
		}
		s.value, s.source = s.def, "default"
	}
	path := ss.configPath
	if path == "" {
		path = getenv("ACW_CONFIG")
	}
	if path != "" {
		if err := ss.loadFile(path); err != nil {
			return err
		}
	}
	for _, s := range ss.list {
		if v, ok := lookupEnv(getenv, s.env()); ok {
			if err := s.set(v); err != nil {
				return fmt.Errorf("%w: setting %s from environment variable %s: %v", errConfig, s.flag, s.env(), err)
			}
			s.value, s.source = v, "env "+s.env()
		}
	}
	for _, s := range ss.list {
		if s.cliSet {
			_ = s.set(s.cli) // checked when parsed
			s.value, s.source = s.cli, "flag --"+s.flag
		}
	}
	return nil
}

// lookupEnv treats an empty variable as unset, as shells and container
// runtimes commonly pass them.
func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// knownKeys lists every config-file key any command understands, so that
// one file can serve run, replay and demo while typos are still caught.
func knownKeys() map[string]bool {
	keys := map[string]bool{}
	var rf runFlags
	var ss settings
	rf.register(&ss)
	for _, s := range ss.list {
		keys[s.key] = true
	}
	for k := range ss.extra {
		keys[k] = true
	}
	return keys
}

// loadFile reads the YAML config file at path and applies its values.
// syntaxLine locates a YAML syntax error for people: the YAML parser
// names the line where the enclosing block began (often line 1), so this
// names the line after the longest start of the document that parses
// ("line N (TEXT)"), or "" when it cannot tell.
func syntaxLine(b []byte) string {
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > 2000 {
		return ""
	}
	good := 0 // the longest prefix of lines that parses
	for n := 1; n <= len(lines); n++ {
		var doc yaml.Node
		err := yaml.Unmarshal([]byte(strings.Join(lines[:n], "")), &doc)
		if err == nil {
			good = n
		}
	}
	if good >= len(lines) {
		return ""
	}
	return fmt.Sprintf("line %d (%q)", good+1, strings.TrimRight(lines[good], "\r\n"))
}

func (ss *settings) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: config file: %v", errConfig, err)
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file
		}
		if at := syntaxLine(b); at != "" {
			// the parser's own line is where the enclosing block began
			msg := regexp.MustCompile(`^yaml: line \d+: `).ReplaceAllString(err.Error(), "")
			return fmt.Errorf("%w: config file %s %s: %s", errConfig, path, at, msg)
		}
		return fmt.Errorf("%w: config file %s: %v", errConfig, path, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	byKey := map[string]*setting{}
	for _, s := range ss.list {
		byKey[s.key] = s
	}
	known := knownKeys()
	var walk func(prefix string, n *yaml.Node) error
	walk = func(prefix string, n *yaml.Node) error {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%w: config file %s line %d: %s must be a mapping of settings", errConfig, path, n.Line, orTop(prefix))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + k.Value
			}
			if dec, ok := ss.extra[key]; ok {
				if err := dec(v); err != nil {
					return fmt.Errorf("%w: config file %s line %d: %s: %v", errConfig, path, v.Line, key, err)
				}
				flow := *v
				flow.Style = yaml.FlowStyle
				out, _ := yaml.Marshal(&flow)
				ss.extraSeen = append(ss.extraSeen, row{key, strings.TrimSpace(string(out)), fmt.Sprintf("file %s line %d", path, v.Line)})
				continue
			}
			if known[key] {
				s := byKey[key]
				if s == nil {
					continue // another command's setting
				}
				val, err := scalarOrList(v)
				if err != nil {
					return fmt.Errorf("%w: config file %s line %d: %s: %v", errConfig, path, v.Line, key, err)
				}
				if err := s.set(val); err != nil {
					return fmt.Errorf("%w: config file %s line %d: %s: %v", errConfig, path, v.Line, key, err)
				}
				s.value, s.source = val, fmt.Sprintf("file %s line %d", path, v.Line)
				continue
			}
			if v.Kind == yaml.MappingNode && hasPrefix(known, key+".") {
				if err := walk(key, v); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("%w: config file %s line %d: unknown setting %s%s", errConfig, path, k.Line, key, suggest(known, key))
		}
		return nil
	}
	return walk("", doc.Content[0])
}

func orTop(prefix string) string {
	if prefix == "" {
		return "the file"
	}
	return prefix
}

func hasPrefix(keys map[string]bool, p string) bool {
	for k := range keys {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// suggest names the known keys of the same section, for a typo.
func suggest(keys map[string]bool, key string) string {
	sec := ""
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		sec = key[:i+1]
	}
	var same []string
	for k := range keys {
		if strings.HasPrefix(k, sec) && (sec != "" || !strings.Contains(k, ".")) {
			same = append(same, k)
		}
	}
	if len(same) == 0 || len(same) > 20 {
		sections := map[string]bool{}
		for k := range keys {
			s, _, _ := strings.Cut(k, ".")
			sections[s] = true
		}
		return " (sections: " + strings.Join(sortedKeys(sections), ", ") + ")"
	}
	slices.Sort(same)
	return " (known here: " + strings.Join(same, ", ") + ")"
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// scalarOrList turns a YAML scalar, or a sequence of scalars (joined with
// commas), into a setting's string form.
func scalarOrList(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", errors.New("want a list of plain values")
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", errors.New("want a value or a list of values")
	}
}

// print writes the effective configuration as YAML, each value commented
// with its source; secrets are masked.
func (ss *settings) print(w io.Writer) {
	rows := slices.Clone(ss.extraSeen)
	for _, s := range ss.list {
		v := s.value
		if s.mask != nil {
			v = s.mask(v)
		}
		switch {
		case s.plain:
		case s.list:
			l := splitList(v)
			for i := range l {
				l[i] = yamlScalar(l[i])
			}
			v = "[" + strings.Join(l, ", ") + "]"
		default:
			v = yamlScalar(v)
		}
		rows = append(rows, row{s.key, v, s.source})
	}
	slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a.key, b.key) })
	var prev []string
	for _, s := range rows {
		parts := strings.Split(s.key, ".")
		common := 0
		for common < len(prev)-1 && common < len(parts)-1 && prev[common] == parts[common] {
			common++
		}
		for i := common; i < len(parts)-1; i++ {
			fmt.Fprintf(w, "%s%s:\n", strings.Repeat("  ", i), parts[i])
		}
		fmt.Fprintf(w, "%s%s: %s # %s\n", strings.Repeat("  ", len(parts)-1), parts[len(parts)-1], s.value, s.source)
		prev = parts
	}
}

func yamlScalar(v string) string {
	out, err := yaml.Marshal(v)
	if err != nil {
		return strconv.Quote(v)
	}
	return strings.TrimSpace(string(out))
}
