package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"text/tabwriter"
	"time"
)

// check loads what the organiser configured, as the server would, and
// prints a summary instead of serving. A problem is an error naming the
// file and line, as at start-up.
func check(cfg *config, w io.Writer) error {
	world, lessons, err := loadAll(cfg)
	if err != nil {
		fmt.Fprintf(w, "problem: %v\n", err)
		return errors.New("--check found a problem (above)")
	}
	where := "the embedded default world"
	if cfg.mailboxes != "" {
		where = cfg.mailboxes + " with the passwords of " + cfg.users
	}
	fmt.Fprintf(w, "World: %s\n\n", where)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "account\tmessages\toctets\tlargest\t")
	var messages int
	var octets int64
	for _, a := range world.Accounts() {
		var total, largest int64
		for _, m := range a.Messages {
			total += m.Size()
			largest = max(largest, m.Size())
		}
		messages += len(a.Messages)
		octets += total
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", a.Name, len(a.Messages), total, largest)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d accounts, %d messages, %d octets\n", len(world.Accounts()), messages, octets)
	if bs := world.Bulletins.Bulletins(); len(bs) > 0 {
		fmt.Fprintf(w, "%d bulletins:", len(bs))
		for _, b := range bs {
			fmt.Fprintf(w, " %q", b.Subject)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%d lessons:", len(lessons))
	for _, l := range lessons {
		fmt.Fprintf(w, " %s (%d steps)", l.ID, len(l.Steps))
	}
	fmt.Fprintln(w)
	warnings := append(slices.Clone(world.Warnings), world.LessonWarnings(lessons)...)
	for _, warn := range warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if len(warnings) == 0 {
		fmt.Fprintln(w, "No problems found.")
	}
	return nil
}

// probe is a health check for a container without curl: it GETs url and
// succeeds if the answer is 200 OK.
func probe(ctx context.Context, url string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	fmt.Fprintf(w, "%s %s", resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe: %s answered %s", url, resp.Status)
	}
	return nil
}
