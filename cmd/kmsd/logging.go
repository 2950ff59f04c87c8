package main

import (
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// logLevels are the values --log-level accepts.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// checkLogLevel refuses a level hclog would silently read as "info".
func checkLogLevel(level string) error {
	for _, l := range logLevels {
		if strings.EqualFold(level, l) {
			return nil
		}
	}
	return fmt.Errorf("--log-level %q is not a level; use one of: %s", level, strings.Join(logLevels, ", "))
}

// newLogger is the process's root logger. In JSON, every key/value pair is
// a member of the line's object; values that only know how to print
// themselves (fmt.Stringer without a JSON or text form, such as Raft's
// node and server values) are written as their string, where hclog alone
// would write "{}".
func newLogger(level string, jsonFormat bool, out io.Writer) hclog.Logger {
	l := hclog.New(&hclog.LoggerOptions{
		Name:       "kmsd",
		Level:      hclog.LevelFromString(level),
		JSONFormat: jsonFormat,
		Output:     out,
	})
	if jsonFormat {
		return jsonValues{l}
	}
	return l
}

// jsonValues is an hclog.Logger that turns Stringer values into strings
// before hclog marshals them.
type jsonValues struct{ hclog.Logger }

func (j jsonValues) Log(level hclog.Level, msg string, args ...interface{}) {
	j.Logger.Log(level, msg, stringers(args)...)
}
func (j jsonValues) Trace(msg string, args ...interface{}) { j.Logger.Trace(msg, stringers(args)...) }
func (j jsonValues) Debug(msg string, args ...interface{}) { j.Logger.Debug(msg, stringers(args)...) }
func (j jsonValues) Info(msg string, args ...interface{})  { j.Logger.Info(msg, stringers(args)...) }
func (j jsonValues) Warn(msg string, args ...interface{})  { j.Logger.Warn(msg, stringers(args)...) }
func (j jsonValues) Error(msg string, args ...interface{}) { j.Logger.Error(msg, stringers(args)...) }
func (j jsonValues) With(args ...interface{}) hclog.Logger {
	return jsonValues{j.Logger.With(stringers(args)...)}
}
func (j jsonValues) Named(name string) hclog.Logger { return jsonValues{j.Logger.Named(name)} }
func (j jsonValues) ResetNamed(name string) hclog.Logger {
	return jsonValues{j.Logger.ResetNamed(name)}
}

// stringers returns args with every value (odd position) that is a
// fmt.Stringer, but neither an error nor marshalable, replaced by its
// string.
func stringers(args []interface{}) []interface{} {
	var out []interface{}
	for i := 1; i < len(args); i += 2 {
		s, ok := args[i].(fmt.Stringer)
		if !ok {
			continue
		}
		switch args[i].(type) {
		case error, json.Marshaler, encoding.TextMarshaler:
			continue
		}
		if out == nil {
			out = append([]interface{}(nil), args...)
		}
		out[i] = safeString(s)
	}
	if out == nil {
		return args
	}
	return out
}

// safeString calls String, which a nil pointer may not survive.
func safeString(s fmt.Stringer) (str string) {
	if v := reflect.ValueOf(s); v.Kind() == reflect.Pointer && v.IsNil() {
		return "<nil>"
	}
	defer func() {
		if recover() != nil {
			str = fmt.Sprintf("%T", s)
		}
	}()
	return s.String()
}
