package bridge

import "strconv"

// appendChannelJSON appends the type-specific members of a bbo, kline,
// ticker or liquidation body (after "recv_ts"). Like the trade encoder it
// does not allocate when dst has room.
//
//	bbo:         ,"update_id":N,"bid_price":"p","bid_qty":"q","ask_price":"p","ask_qty":"q"
//	kline:       ,"interval":"1m","open_time":N,"close_time":N,"open":"p","high":"p","low":"p","close":"p",
//	             "volume":"q","quote_volume":"q"[,"trades":N],"closed":true
//	ticker:      ,"seq":N[,"last_price":"p"][,"mark_price":"p"][,"index_price":"p"][,"funding_rate":"r"]
//	             [,"open_interest":"q"][,"next_funding_time":N]
//	liquidation: ,"side":"sell","price":"p","qty":"q","n":N
func (e *Event) appendChannelJSON(dst []byte) []byte {
	switch e.Type {
	case EventBBO:
		dst = append(dst, `,"update_id":`...)
		dst = strconv.AppendInt(dst, e.LastID, 10)
		dst = appendMember(dst, `,"bid_price":`, e.Price)
		dst = appendMember(dst, `,"bid_qty":`, e.Qty)
		dst = appendMember(dst, `,"ask_price":`, e.More[0])
		dst = appendMember(dst, `,"ask_qty":`, e.More[1])
	case EventKline:
		dst = append(dst, `,"interval":"`...)
		dst = append(dst, e.Interval.String()...)
		dst = append(dst, `","open_time":`...)
		dst = strconv.AppendInt(dst, e.FirstID, 10)
		dst = append(dst, `,"close_time":`...)
		dst = strconv.AppendInt(dst, e.LastID, 10)
		dst = appendMember(dst, `,"open":`, e.More[0])
		dst = appendMember(dst, `,"high":`, e.More[1])
		dst = appendMember(dst, `,"low":`, e.More[2])
		dst = appendMember(dst, `,"close":`, e.Price)
		dst = appendMember(dst, `,"volume":`, e.Qty)
		dst = appendMember(dst, `,"quote_volume":`, e.ID)
		if e.Seq >= 0 {
			dst = append(dst, `,"trades":`...)
			dst = strconv.AppendInt(dst, e.Seq, 10)
		}
		if e.Flags&FlagClosed != 0 {
			dst = append(dst, `,"closed":true`...)
		} else {
			dst = append(dst, `,"closed":false`...)
		}
	case EventTicker:
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendInt(dst, e.LastID, 10)
		dst = appendOptional(dst, `,"last_price":`, e.Price)
		dst = appendOptional(dst, `,"mark_price":`, e.More[0])
		dst = appendOptional(dst, `,"index_price":`, e.More[1])
		dst = appendOptional(dst, `,"funding_rate":`, e.More[2])
		dst = appendOptional(dst, `,"open_interest":`, e.ID)
		if e.Seq > 0 {
			dst = append(dst, `,"next_funding_time":`...)
			dst = strconv.AppendInt(dst, e.Seq, 10)
		}
	case EventLiquidation:
		dst = append(dst, `,"side":"`...)
		dst = append(dst, e.Side.String()...)
		dst = append(dst, '"')
		dst = appendMember(dst, `,"price":`, e.Price)
		dst = appendMember(dst, `,"qty":`, e.Qty)
		dst = append(dst, `,"n":`...)
		dst = strconv.AppendInt(dst, e.Seq, 10)
	}
	return dst
}

func appendMember(dst []byte, key, v string) []byte {
	dst = append(dst, key...)
	return appendJSONString(dst, v)
}

func appendOptional(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	return appendMember(dst, key, v)
}

// wireChannel holds the body members of the channel events (DecodeJSON).
type wireChannel struct {
	UpdateID        int64  `json:"update_id"`
	BidPrice        string `json:"bid_price"`
	BidQty          string `json:"bid_qty"`
	AskPrice        string `json:"ask_price"`
	AskQty          string `json:"ask_qty"`
	Interval        string `json:"interval"`
	OpenTime        int64  `json:"open_time"`
	CloseTime       int64  `json:"close_time"`
	Open            string `json:"open"`
	High            string `json:"high"`
	Low             string `json:"low"`
	Close           string `json:"close"`
	Volume          string `json:"volume"`
	QuoteVolume     string `json:"quote_volume"`
	Trades          *int64 `json:"trades"`
	Closed          bool   `json:"closed"`
	SeqNo           int64  `json:"seq"`
	LastPrice       string `json:"last_price"`
	MarkPrice       string `json:"mark_price"`
	IndexPrice      string `json:"index_price"`
	FundingRate     string `json:"funding_rate"`
	OpenInterest    string `json:"open_interest"`
	NextFundingTime int64  `json:"next_funding_time"`
	N               int64  `json:"n"`
}

// fill sets the channel payload of e from w.
func (w *wireChannel) fill(e *Event) error {
	switch e.Type {
	case EventBBO:
		e.SetBBO(BBO{BidPrice: w.BidPrice, BidQty: w.BidQty, AskPrice: w.AskPrice, AskQty: w.AskQty, UpdateID: w.UpdateID})
	case EventKline:
		iv, err := ParseInterval(w.Interval)
		if err != nil {
			return err
		}
		trades := int64(-1)
		if w.Trades != nil {
			trades = *w.Trades
		}
		e.SetBar(Bar{Interval: iv, OpenTime: w.OpenTime, CloseTime: w.CloseTime, Open: w.Open, High: w.High,
			Low: w.Low, Close: w.Close, Volume: w.Volume, QuoteVolume: w.QuoteVolume, Trades: trades, Closed: w.Closed})
	case EventTicker:
		e.SetTicker(Ticker{LastPrice: w.LastPrice, MarkPrice: w.MarkPrice, IndexPrice: w.IndexPrice,
			FundingRate: w.FundingRate, OpenInterest: w.OpenInterest, NextFundingTime: w.NextFundingTime, Seq: w.SeqNo})
	case EventLiquidation:
		e.Seq = w.N
		e.ID = ""
	}
	return nil
}
