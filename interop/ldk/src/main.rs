//! lab-ldk: one ldk-node instance on a Bitcoin Core regtest chain, driven by the
//! lightning-lab harness over a small HTTP+JSON control API.
//!
//! Every call is `POST /<method>` with a JSON object body and answers
//! `{"result": ...}` (200) or `{"error": {"kind": ..., "message": ...}}` (400 for a
//! request the driver cannot parse, 500 when ldk-node refuses). Events are
//! recorded in order as they happen and read back with `events` (by sequence
//! number), so the harness can wait on them without holding a stream open.
//!
//! Usage:
//!   lab-ldk --storage-dir=DIR --listen=HOST:PORT --api=HOST:PORT --alias=NAME
//!           --bitcoind-rpc=HOST:PORT --rpc-user=U --rpc-password=P
//!           [--lsps1=PUBKEY@HOST:PORT] [--lsps2=PUBKEY@HOST:PORT] [--trust-lsp-reserve]
//!           [--anchor-reserve-sat=N] [--announce=HOST:PORT]
//!   lab-ldk --version

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::thread;

use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::bitcoin::{Address, Network};
use ldk_node::config::Config;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning::routing::router::RouteParametersConfig;
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use ldk_node::lightning_liquidity::lsps1::msgs::LSPS1OrderId;
use ldk_node::payment::{PaymentDetails, PaymentDirection, PaymentKind, PaymentStatus};
use ldk_node::{Builder, ChannelDetails, Event, LightningBalance, Node, UserChannelId};
use serde_json::{json, Map, Value};

const LDK_NODE_VERSION: &str = "0.7.1";

type Result<T> = std::result::Result<T, ApiError>;

struct ApiError {
    status: u16,
    kind: &'static str,
    message: String,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError { status: 400, kind: "bad_request", message: message.into() }
}

fn refused(e: impl std::fmt::Display) -> ApiError {
    // ldk-node's NodeError prints as a sentence; its Debug name is the stable kind.
    ApiError { status: 500, kind: "node_error", message: e.to_string() }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ------------------------------------------------------------------ arguments

struct Args {
    storage_dir: String,
    listen: SocketAddress,
    announce: Option<SocketAddress>,
    api: String,
    alias: String,
    rpc_host: String,
    rpc_port: u16,
    rpc_user: String,
    rpc_password: String,
    lsps1: Option<(PublicKey, SocketAddress)>,
    lsps2: Option<(PublicKey, SocketAddress)>,
    trust_lsp_reserve: bool,
    anchor_reserve_sat: Option<u64>,
}

fn parse_peer(flag: &str, value: &str) -> std::result::Result<(PublicKey, SocketAddress), String> {
    let (pk, addr) = value.split_once('@').ok_or(format!("{flag} must be PUBKEY@HOST:PORT, got {value:?}"))?;
    let pk = PublicKey::from_str(pk).map_err(|e| format!("{flag}: bad public key {pk:?}: {e}"))?;
    let addr = SocketAddress::from_str(addr).map_err(|e| format!("{flag}: bad address {addr:?}: {e:?}"))?;
    Ok((pk, addr))
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut kv: HashMap<String, String> = HashMap::new();
    for arg in std::env::args().skip(1) {
        let Some(rest) = arg.strip_prefix("--") else { return Err(format!("unexpected argument {arg:?}")) };
        let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
        kv.insert(k.to_string(), v.to_string());
    }
    let need = |k: &str| kv.get(k).cloned().filter(|v| !v.is_empty()).ok_or(format!("--{k}=... is required"));
    let rpc = need("bitcoind-rpc")?;
    let (rpc_host, rpc_port) = rpc.rsplit_once(':').ok_or(format!("--bitcoind-rpc must be HOST:PORT, got {rpc:?}"))?;
    let listen = need("listen")?;
    Ok(Args {
        storage_dir: need("storage-dir")?,
        listen: SocketAddress::from_str(&listen).map_err(|e| format!("--listen: bad address {listen:?}: {e:?}"))?,
        announce: kv
            .get("announce")
            .map(|v| SocketAddress::from_str(v).map_err(|e| format!("--announce: bad address {v:?}: {e:?}")))
            .transpose()?,
        api: need("api")?,
        alias: need("alias")?,
        rpc_host: rpc_host.to_string(),
        rpc_port: rpc_port.parse().map_err(|_| format!("--bitcoind-rpc: bad port in {rpc:?}"))?,
        rpc_user: need("rpc-user")?,
        rpc_password: need("rpc-password")?,
        lsps1: kv.get("lsps1").map(|v| parse_peer("--lsps1", v)).transpose()?,
        lsps2: kv.get("lsps2").map(|v| parse_peer("--lsps2", v)).transpose()?,
        trust_lsp_reserve: kv.contains_key("trust-lsp-reserve"),
        anchor_reserve_sat: kv
            .get("anchor-reserve-sat")
            .map(|v| v.parse().map_err(|_| format!("--anchor-reserve-sat: not a number: {v:?}")))
            .transpose()?,
    })
}

fn build_node(args: &Args) -> std::result::Result<Node, String> {
    let mut config = Config::default();
    config.network = Network::Regtest;
    config.storage_dir_path = args.storage_dir.clone();
    config.listening_addresses = Some(vec![args.listen.clone()]);
    // Where peers reach us when that is not where we listen (a container listens on 0.0.0.0).
    config.announcement_addresses = args.announce.clone().map(|a| vec![a]);
    if let Some(anchors) = config.anchor_channels_config.as_mut() {
        if let Some(sat) = args.anchor_reserve_sat {
            anchors.per_channel_reserve_sats = sat;
        }
        if args.trust_lsp_reserve {
            // The LSP's anchor channels then need no on-chain reserve of ours (a fresh wallet has none).
            for (pk, _) in args.lsps1.iter().chain(args.lsps2.iter()) {
                anchors.trusted_peers_no_reserve.push(*pk);
            }
        }
    }
    let mut builder = Builder::from_config(config);
    builder.set_chain_source_bitcoind_rpc(
        args.rpc_host.clone(),
        args.rpc_port,
        args.rpc_user.clone(),
        args.rpc_password.clone(),
    );
    builder.set_node_alias(args.alias.clone()).map_err(|e| format!("--alias: {e:?}"))?;
    if let Some((pk, addr)) = &args.lsps1 {
        builder.set_liquidity_source_lsps1(*pk, addr.clone(), None);
    }
    if let Some((pk, addr)) = &args.lsps2 {
        builder.set_liquidity_source_lsps2(*pk, addr.clone(), None);
    }
    builder.build().map_err(|e| format!("building the node failed: {e:?}"))
}

// ------------------------------------------------------------------ JSON views

fn channel_json(c: &ChannelDetails) -> Value {
    json!({
        "channel_id": c.channel_id.to_string(),
        "user_channel_id": c.user_channel_id.0.to_string(),
        "counterparty_node_id": c.counterparty_node_id.to_string(),
        "funding_txo": c.funding_txo.map(|o| o.to_string()),
        "short_channel_id": c.short_channel_id,
        "outbound_scid_alias": c.outbound_scid_alias,
        "inbound_scid_alias": c.inbound_scid_alias,
        "channel_value_sats": c.channel_value_sats,
        "outbound_capacity_msat": c.outbound_capacity_msat,
        "inbound_capacity_msat": c.inbound_capacity_msat,
        "unspendable_punishment_reserve": c.unspendable_punishment_reserve,
        "counterparty_unspendable_punishment_reserve": c.counterparty_unspendable_punishment_reserve,
        "confirmations": c.confirmations,
        "confirmations_required": c.confirmations_required,
        "is_outbound": c.is_outbound,
        "is_channel_ready": c.is_channel_ready,
        "is_usable": c.is_usable,
        "is_announced": c.is_announced,
        "feerate_sat_per_1000_weight": c.feerate_sat_per_1000_weight,
        "next_outbound_htlc_limit_msat": c.next_outbound_htlc_limit_msat,
    })
}

fn payment_json(p: &PaymentDetails) -> Value {
    let mut v = json!({
        "id": hex(&p.id.0),
        "amount_msat": p.amount_msat,
        "fee_paid_msat": p.fee_paid_msat,
        "direction": match p.direction { PaymentDirection::Inbound => "inbound", PaymentDirection::Outbound => "outbound" },
        "status": match p.status {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
        },
        "updated_at": p.latest_update_timestamp,
    });
    let extra = match &p.kind {
        PaymentKind::Bolt11 { hash, preimage, .. } => json!({
            "kind": "bolt11", "payment_hash": hex(&hash.0), "preimage": preimage.map(|x| hex(&x.0)),
        }),
        PaymentKind::Bolt11Jit { hash, preimage, counterparty_skimmed_fee_msat, lsp_fee_limits, .. } => json!({
            "kind": "bolt11_jit", "payment_hash": hex(&hash.0), "preimage": preimage.map(|x| hex(&x.0)),
            "counterparty_skimmed_fee_msat": counterparty_skimmed_fee_msat,
            "max_total_opening_fee_msat": lsp_fee_limits.max_total_opening_fee_msat,
            "max_proportional_opening_fee_ppm_msat": lsp_fee_limits.max_proportional_opening_fee_ppm_msat,
        }),
        PaymentKind::Spontaneous { hash, preimage } => json!({
            "kind": "spontaneous", "payment_hash": hex(&hash.0), "preimage": preimage.map(|x| hex(&x.0)),
        }),
        PaymentKind::Onchain { txid, .. } => json!({"kind": "onchain", "txid": txid.to_string()}),
        #[allow(unreachable_patterns)]
        other => json!({"kind": format!("{other:?}").split([' ', '{']).next().unwrap_or("other").to_lowercase()}),
    };
    if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
        base.extend(more);
    }
    v
}

fn event_json(e: &Event) -> Value {
    match e {
        Event::PaymentSuccessful { payment_id, payment_hash, payment_preimage, fee_paid_msat } => json!({
            "type": "PaymentSuccessful", "payment_id": payment_id.map(|x| hex(&x.0)), "payment_hash": hex(&payment_hash.0),
            "preimage": payment_preimage.map(|x| hex(&x.0)), "fee_paid_msat": fee_paid_msat,
        }),
        Event::PaymentFailed { payment_id, payment_hash, reason } => json!({
            "type": "PaymentFailed", "payment_id": payment_id.map(|x| hex(&x.0)),
            "payment_hash": payment_hash.map(|x| hex(&x.0)), "reason": reason.map(|r| format!("{r:?}")),
        }),
        Event::PaymentReceived { payment_id, payment_hash, amount_msat, .. } => json!({
            "type": "PaymentReceived", "payment_id": payment_id.map(|x| hex(&x.0)), "payment_hash": hex(&payment_hash.0),
            "amount_msat": amount_msat,
        }),
        Event::ChannelPending { channel_id, user_channel_id, counterparty_node_id, funding_txo, .. } => json!({
            "type": "ChannelPending", "channel_id": channel_id.to_string(), "user_channel_id": user_channel_id.0.to_string(),
            "counterparty_node_id": counterparty_node_id.to_string(), "funding_txo": funding_txo.to_string(),
        }),
        Event::ChannelReady { channel_id, user_channel_id, counterparty_node_id, .. } => json!({
            "type": "ChannelReady", "channel_id": channel_id.to_string(), "user_channel_id": user_channel_id.0.to_string(),
            "counterparty_node_id": counterparty_node_id.map(|x| x.to_string()),
        }),
        Event::ChannelClosed { channel_id, user_channel_id, counterparty_node_id, reason } => json!({
            "type": "ChannelClosed", "channel_id": channel_id.to_string(), "user_channel_id": user_channel_id.0.to_string(),
            "counterparty_node_id": counterparty_node_id.map(|x| x.to_string()), "reason": reason.as_ref().map(|r| format!("{r:?}")),
        }),
        other => json!({"type": format!("{other:?}").split([' ', '{']).next().unwrap_or("Other"), "debug": format!("{other:?}")}),
    }
}

// ------------------------------------------------------------------ request helpers

fn s<'a>(p: &'a Map<String, Value>, k: &str) -> Result<&'a str> {
    p.get(k).and_then(Value::as_str).ok_or_else(|| bad(format!("'{k}' (a string) is required")))
}

fn u(p: &Map<String, Value>, k: &str) -> Result<u64> {
    p.get(k).and_then(Value::as_u64).ok_or_else(|| bad(format!("'{k}' (a non-negative integer) is required")))
}

fn opt_u(p: &Map<String, Value>, k: &str) -> Result<Option<u64>> {
    match p.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| bad(format!("'{k}' must be a non-negative integer"))),
    }
}

fn flag(p: &Map<String, Value>, k: &str) -> bool {
    p.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn pubkey(p: &Map<String, Value>, k: &str) -> Result<PublicKey> {
    let v = s(p, k)?;
    PublicKey::from_str(v).map_err(|e| bad(format!("'{k}': not a public key ({e})")))
}

fn address(p: &Map<String, Value>, k: &str) -> Result<SocketAddress> {
    let v = s(p, k)?;
    SocketAddress::from_str(v).map_err(|e| bad(format!("'{k}': not HOST:PORT ({e:?})")))
}

/// Routing limits for a payment: `max_fee_msat` caps the total routing fee (ldk-node's default is
/// 1% + 50 sat), `max_parts` the MPP paths.
fn route_params(p: &Map<String, Value>) -> Result<Option<RouteParametersConfig>> {
    let (fee, parts) = (opt_u(p, "max_fee_msat")?, opt_u(p, "max_parts")?);
    if fee.is_none() && parts.is_none() {
        return Ok(None);
    }
    let mut rp = RouteParametersConfig::default();
    rp.max_total_routing_fee_msat = fee.or(rp.max_total_routing_fee_msat);
    if let Some(n) = parts {
        rp.max_path_count = u8::try_from(n).map_err(|_| bad("'max_parts' must be at most 255"))?;
    }
    Ok(Some(rp))
}

fn description(p: &Map<String, Value>) -> Result<Bolt11InvoiceDescription> {
    let text = p.get("description").and_then(Value::as_str).unwrap_or("");
    let d = Description::new(text.to_string()).map_err(|e| bad(format!("'description': {e:?}")))?;
    Ok(Bolt11InvoiceDescription::Direct(d))
}

fn user_channel_id(p: &Map<String, Value>) -> Result<UserChannelId> {
    let v = s(p, "user_channel_id")?;
    v.parse::<u128>().map(UserChannelId).map_err(|_| bad("'user_channel_id' must be a decimal string"))
}

// ------------------------------------------------------------------ the API

struct Driver {
    node: Arc<Node>,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Driver {
    fn call(&self, method: &str, p: &Map<String, Value>) -> Result<Value> {
        let node = &self.node;
        match method {
            "getinfo" => {
                let st = node.status();
                Ok(json!({
                    "node_id": node.node_id().to_string(),
                    "listening_addresses": node.listening_addresses().unwrap_or_default().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "is_running": st.is_running,
                    "block_height": st.current_best_block.height,
                    "block_hash": st.current_best_block.block_hash.to_string(),
                    "latest_onchain_wallet_sync_timestamp": st.latest_onchain_wallet_sync_timestamp,
                    "latest_lightning_wallet_sync_timestamp": st.latest_lightning_wallet_sync_timestamp,
                    "ldk_node_version": LDK_NODE_VERSION,
                }))
            }
            "newaddress" => Ok(json!({"address": node.onchain_payment().new_address().map_err(refused)?.to_string()})),
            "balances" => {
                let b = node.list_balances();
                // HTLCs still in flight on open channels (either direction), from each channel's
                // claimable balance: 0 once every payment through us has settled or failed.
                let pending_htlc_msat: u64 = b
                    .lightning_balances
                    .iter()
                    .map(|lb| match lb {
                        LightningBalance::ClaimableOnChannelClose {
                            outbound_payment_htlc_rounded_msat,
                            outbound_forwarded_htlc_rounded_msat,
                            inbound_claiming_htlc_rounded_msat,
                            inbound_htlc_rounded_msat,
                            ..
                        } => {
                            outbound_payment_htlc_rounded_msat
                                + outbound_forwarded_htlc_rounded_msat
                                + inbound_claiming_htlc_rounded_msat
                                + inbound_htlc_rounded_msat
                        }
                        _ => 0,
                    })
                    .sum();
                Ok(json!({
                    "pending_htlc_msat": pending_htlc_msat,
                    "total_onchain_balance_sats": b.total_onchain_balance_sats,
                    "spendable_onchain_balance_sats": b.spendable_onchain_balance_sats,
                    "total_anchor_channels_reserve_sats": b.total_anchor_channels_reserve_sats,
                    "total_lightning_balance_sats": b.total_lightning_balance_sats,
                }))
            }
            "sync" => {
                node.sync_wallets().map_err(refused)?;
                Ok(json!({}))
            }
            "sendonchain" => {
                let addr = Address::from_str(s(p, "address")?)
                    .map_err(|e| bad(format!("'address': {e}")))?
                    .require_network(Network::Regtest)
                    .map_err(|e| bad(format!("'address': {e}")))?;
                let txid = node.onchain_payment().send_to_address(&addr, u(p, "amount_sat")?, None).map_err(refused)?;
                Ok(json!({"txid": txid.to_string()}))
            }
            "connect" => {
                node.connect(pubkey(p, "node_id")?, address(p, "address")?, flag(p, "persist")).map_err(refused)?;
                Ok(json!({}))
            }
            "disconnect" => {
                node.disconnect(pubkey(p, "node_id")?).map_err(refused)?;
                Ok(json!({}))
            }
            "listpeers" => Ok(Value::Array(
                node.list_peers()
                    .iter()
                    .map(|x| json!({"node_id": x.node_id.to_string(), "address": x.address.to_string(), "is_connected": x.is_connected}))
                    .collect(),
            )),
            "openchannel" => {
                let (id, addr, sat) = (pubkey(p, "node_id")?, address(p, "address")?, u(p, "amount_sat")?);
                let push = opt_u(p, "push_msat")?;
                let ucid = if flag(p, "announce") {
                    node.open_announced_channel(id, addr, sat, push, None)
                } else {
                    node.open_channel(id, addr, sat, push, None)
                }
                .map_err(refused)?;
                Ok(json!({"user_channel_id": ucid.0.to_string()}))
            }
            "closechannel" => {
                let (ucid, id) = (user_channel_id(p)?, pubkey(p, "node_id")?);
                if flag(p, "force") {
                    node.force_close_channel(&ucid, id, None).map_err(refused)?;
                } else {
                    node.close_channel(&ucid, id).map_err(refused)?;
                }
                Ok(json!({}))
            }
            "listchannels" => Ok(Value::Array(node.list_channels().iter().map(channel_json).collect())),
            "invoice" => {
                let (d, expiry) = (description(p)?, opt_u(p, "expiry_secs")?.unwrap_or(3600) as u32);
                let inv = match opt_u(p, "amount_msat")? {
                    Some(msat) => node.bolt11_payment().receive(msat, &d, expiry),
                    None => node.bolt11_payment().receive_variable_amount(&d, expiry),
                }
                .map_err(refused)?;
                Ok(json!({"invoice": inv.to_string(), "payment_hash": hex(inv.payment_hash().as_ref())}))
            }
            "jitinvoice" => {
                let (d, expiry) = (description(p)?, opt_u(p, "expiry_secs")?.unwrap_or(3600) as u32);
                let inv = match opt_u(p, "amount_msat")? {
                    Some(msat) => node.bolt11_payment().receive_via_jit_channel(
                        msat, &d, expiry, opt_u(p, "max_total_lsp_fee_limit_msat")?,
                    ),
                    None => node.bolt11_payment().receive_variable_amount_via_jit_channel(
                        &d, expiry, opt_u(p, "max_proportional_lsp_fee_limit_ppm_msat")?,
                    ),
                }
                .map_err(refused)?;
                Ok(json!({"invoice": inv.to_string(), "payment_hash": hex(inv.payment_hash().as_ref())}))
            }
            "pay" => {
                let inv = Bolt11Invoice::from_str(s(p, "invoice")?).map_err(|e| bad(format!("'invoice': {e}")))?;
                let rp = route_params(p)?;
                let id = match opt_u(p, "amount_msat")? {
                    Some(msat) => node.bolt11_payment().send_using_amount(&inv, msat, rp),
                    None => node.bolt11_payment().send(&inv, rp),
                }
                .map_err(refused)?;
                Ok(json!({"payment_id": hex(&id.0)}))
            }
            "keysend" => {
                let id = node
                    .spontaneous_payment()
                    .send(u(p, "amount_msat")?, pubkey(p, "node_id")?, route_params(p)?)
                    .map_err(refused)?;
                Ok(json!({"payment_id": hex(&id.0)}))
            }
            "listpayments" => Ok(Value::Array(node.list_payments().iter().map(payment_json).collect())),
            "lsps1_request" => {
                let order = node
                    .lsps1_liquidity()
                    .request_channel(
                        u(p, "lsp_balance_sat")?,
                        u(p, "client_balance_sat")?,
                        u(p, "channel_expiry_blocks")? as u32,
                        flag(p, "announce_channel"),
                    )
                    .map_err(refused)?;
                Ok(order_json(&order))
            }
            "lsps1_status" => {
                let id = LSPS1OrderId(s(p, "order_id")?.to_string());
                let order = node.lsps1_liquidity().check_order_status(id).map_err(refused)?;
                Ok(order_json(&order))
            }
            "events" => {
                let after = opt_u(p, "after")?.unwrap_or(0) as usize;
                let events = self.events.lock().expect("events lock");
                Ok(Value::Array(events.iter().skip(after).cloned().collect()))
            }
            _ => Err(bad(format!("unknown method {method:?}"))),
        }
    }
}

fn order_json(o: &ldk_node::liquidity::LSPS1OrderStatus) -> Value {
    json!({
        "order_id": o.order_id.0,
        "order_params": serde_json::to_value(&o.order_params).unwrap_or(Value::Null),
        "payment": serde_json::to_value(&o.payment_options).unwrap_or(Value::Null),
        "channel": serde_json::to_value(&o.channel_state).unwrap_or(Value::Null),
    })
}

fn respond(req: tiny_http::Request, status: u16, body: Value) {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).expect("static header");
    let resp = tiny_http::Response::from_string(body.to_string()).with_status_code(status).with_header(header);
    let _ = req.respond(resp);
}

fn handle(driver: &Driver, mut req: tiny_http::Request) {
    let method = req.url().trim_start_matches('/').to_string();
    if method == "stop" {
        let _ = driver.node.stop();
        respond(req, 200, json!({"result": {}}));
        std::process::exit(0);
    }
    let mut body = String::new();
    if req.as_reader().read_to_string(&mut body).is_err() {
        return respond(req, 400, json!({"error": {"kind": "bad_request", "message": "the body is not UTF-8"}}));
    }
    let params = match serde_json::from_str::<Value>(if body.trim().is_empty() { "{}" } else { &body }) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return respond(req, 400, json!({"error": {"kind": "bad_request", "message": "the body must be a JSON object"}})),
        Err(e) => return respond(req, 400, json!({"error": {"kind": "bad_request", "message": format!("bad JSON: {e}")}})),
    };
    match driver.call(&method, &params) {
        Ok(v) => respond(req, 200, json!({"result": v})),
        Err(e) => respond(req, e.status, json!({"error": {"kind": e.kind, "message": e.message}})),
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("lab-ldk {} ldk-node {}", env!("CARGO_PKG_VERSION"), LDK_NODE_VERSION);
        return;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let server = match tiny_http::Server::http(&args.api) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on --api={}: {e}", args.api);
            std::process::exit(2);
        }
    };
    let node = match build_node(&args) {
        Ok(n) => Arc::new(n),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = node.start() {
        eprintln!("error: starting the node failed: {e}");
        std::process::exit(1);
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    {
        let (node, events) = (node.clone(), events.clone());
        thread::spawn(move || loop {
            let ev = node.wait_next_event();
            let mut v = event_json(&ev);
            if let Value::Object(m) = &mut v {
                let seq = events.lock().expect("events lock").len() + 1;
                m.insert("seq".into(), json!(seq));
            }
            events.lock().expect("events lock").push(v);
            let _ = node.event_handled();
        });
    }
    println!("lab-ldk ready: node {} api http://{}", node.node_id(), args.api);
    let driver = Arc::new(Driver { node, events });
    for req in server.incoming_requests() {
        let driver = driver.clone();
        thread::spawn(move || handle(&driver, req));
    }
}
