package dc09

import "time"

// SetClock replaces the driver's clock (tests).
func (d *Driver) SetClock(now func() time.Time) { d.now = now }

// Supervise runs one supervision check (tests).
func (d *Driver) Supervise() { d.supervise(time.Duration(d.o.Supervision)) }
