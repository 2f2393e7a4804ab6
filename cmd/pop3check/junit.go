package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"

	"github.com/pop3playground/pop3playground/pop3/check"
)

// The JUnit XML that CI systems read: one testsuite, a testcase per
// check, a failure for FAIL, skipped for SKIP (a WARN passes, with its
// detail as output).
type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	Output    string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(file string, t check.Target, results []check.Result) error {
	js := junitSuite{Name: "pop3check " + t.Addr, Tests: len(results)}
	for _, r := range results {
		c := junitCase{Name: r.ID + ": " + r.Title, Classname: r.RFC + " " + r.Word, Time: fmt.Sprintf("%.3f", r.Seconds)}
		text := strings.Join(r.Exchange, "\n")
		switch r.Status {
		case check.Fail:
			js.Failures++
			c.Failure = &junitMessage{Message: r.Detail, Text: text}
		case check.Skip:
			js.Skipped++
			c.Skipped = &junitMessage{Message: r.Detail}
		case check.Warn:
			c.Output = "WARN: " + r.Detail + "\n" + text
		}
		js.Cases = append(js.Cases, c)
	}
	b, err := xml.MarshalIndent(js, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}
