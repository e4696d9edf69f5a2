package modemsim

import "context"

type class2State struct{}

func (m *Modem) class2(ctx context.Context, u, c string) (bool, error) {
	m.result("ERROR")
	return true, nil
}

func (m *Modem) class2Dial(ctx context.Context) error {
	m.result("ERROR")
	return nil
}
