package host

import (
	"github.com/mediagw/mediagw/datamap"
	"github.com/mediagw/mediagw/host/pipeline"
	"github.com/mediagw/mediagw/linedriver"
)

// dataMap adapts a compiled data map to the pipeline.
type dataMap struct{ m *datamap.Map }

func (d dataMap) Map(raw []byte) (*pipeline.Mapped, error) {
	res, err := d.m.Apply(raw)
	if err != nil {
		// What the map read of the header still lets the host answer.
		var origin *linedriver.Origin
		if res != nil {
			origin = originOf(&res.Message)
		}
		return &pipeline.Mapped{Origin: origin}, err
	}
	out := &pipeline.Mapped{Fields: make(map[string]string, len(res.Fields)), Routes: res.Routes, Origin: originOf(&res.Message)}
	for _, f := range res.Fields {
		out.Fields[f.Name] = f.Value
	}
	for _, doc := range res.Documents {
		out.Documents = append(out.Documents, linedriver.Document{Name: doc.Name, MediaType: doc.MediaType, Data: doc.Data})
	}
	for _, sk := range res.Skipped {
		out.Skipped = append(out.Skipped, linedriver.Skipped{Name: sk.Name, Type: sk.Type, Reason: sk.Reason})
	}
	out.Warnings = res.Warnings
	return out, nil
}

func originOf(m *datamap.MessageInfo) *linedriver.Origin {
	r := m.Reply
	if m.MessageID == "" && r.From == "" {
		return nil
	}
	return &linedriver.Origin{
		MessageID: m.MessageID, References: r.References, Subject: m.Subject,
		From: r.From, ReplyTo: r.ReplyTo, To: r.To, ReturnPath: r.ReturnPath,
		AutoSubmitted: r.AutoSubmitted, Precedence: r.Precedence, ListID: r.ListID, Report: r.Report,
	}
}
