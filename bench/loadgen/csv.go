package loadgen

import (
	"bufio"
	"io"
	"strconv"
	"time"
)

// CSVHeader is the first line WriteCSV writes.
const CSVHeader = "client,start_ms,end_ms,status,kind,pid,retried,newconn"

// WriteCSV writes a header line and then one line per record, for plotting:
// client, start and end in milliseconds from the start of the run (three
// decimals), status (0 if none), kind ("ok" for a successful request), pid
// (0 if unknown), retried and newconn as 0 or 1.
func (r *Result) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(CSVHeader + "\n"); err != nil {
		return err
	}
	var line []byte
	for _, rec := range r.Records {
		line = strconv.AppendInt(line[:0], int64(rec.Client), 10)
		line = append(line, ',')
		line = appendMillis(line, rec.Start)
		line = append(line, ',')
		line = appendMillis(line, rec.End)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(rec.Status), 10)
		line = append(line, ',')
		if rec.Kind == "" {
			line = append(line, "ok"...)
		} else {
			line = append(line, rec.Kind...)
		}
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(rec.PID), 10)
		line = append(line, ',')
		line = appendBool(line, rec.Retried)
		line = append(line, ',')
		line = appendBool(line, rec.NewConn)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, '1')
	}
	return append(b, '0')
}
