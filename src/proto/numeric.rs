//! IRC numeric reply codes used by tether, as the three-digit strings sent
//! on the wire.

// Connection registration.
/// 001: welcome to the network.
pub const RPL_WELCOME: &str = "001";
/// 002: the server's name and version.
pub const RPL_YOURHOST: &str = "002";
/// 003: when the server was created.
pub const RPL_CREATED: &str = "003";
/// 004: server name, version, user and channel modes.
pub const RPL_MYINFO: &str = "004";
/// 005: supported features (ISUPPORT tokens).
pub const RPL_ISUPPORT: &str = "005";

// User modes and away status.
/// 221: the client's user modes.
pub const RPL_UMODEIS: &str = "221";
/// 301: the target is away.
pub const RPL_AWAY: &str = "301";
/// 305: the client is no longer marked away.
pub const RPL_UNAWAY: &str = "305";
/// 306: the client is now marked away.
pub const RPL_NOWAWAY: &str = "306";

// WHO.
/// 315: end of a WHO list.
pub const RPL_ENDOFWHO: &str = "315";
/// 352: one WHO reply.
pub const RPL_WHOREPLY: &str = "352";

// Channel state: modes, topic, names.
/// 324: a channel's modes.
pub const RPL_CHANNELMODEIS: &str = "324";
/// 329: a channel's creation time.
pub const RPL_CREATIONTIME: &str = "329";
/// 331: no topic is set.
pub const RPL_NOTOPIC: &str = "331";
/// 332: a channel's topic.
pub const RPL_TOPIC: &str = "332";
/// 333: who set the topic, and when.
pub const RPL_TOPICWHOTIME: &str = "333";
/// 353: channel members.
pub const RPL_NAMREPLY: &str = "353";
/// 366: end of the channel member list.
pub const RPL_ENDOFNAMES: &str = "366";

// Message of the day.
/// 372: one MOTD line.
pub const RPL_MOTD: &str = "372";
/// 375: start of the MOTD.
pub const RPL_MOTDSTART: &str = "375";
/// 376: end of the MOTD.
pub const RPL_ENDOFMOTD: &str = "376";
/// 422: there is no MOTD.
pub const ERR_NOMOTD: &str = "422";

// Errors.
/// 400: unknown error.
pub const ERR_UNKNOWNERROR: &str = "400";
/// 401: no such nick or channel.
pub const ERR_NOSUCHNICK: &str = "401";
/// 403: no such channel.
pub const ERR_NOSUCHCHANNEL: &str = "403";
/// 404: cannot send to channel.
pub const ERR_CANNOTSENDTOCHAN: &str = "404";
/// 410: invalid CAP subcommand.
pub const ERR_INVALIDCAPCMD: &str = "410";
/// 417: input line too long.
pub const ERR_INPUTTOOLONG: &str = "417";
/// 421: unknown command.
pub const ERR_UNKNOWNCOMMAND: &str = "421";
/// 431: no nickname given.
pub const ERR_NONICKNAMEGIVEN: &str = "431";
/// 432: erroneous nickname.
pub const ERR_ERRONEUSNICKNAME: &str = "432";
/// 433: nickname is already in use.
pub const ERR_NICKNAMEINUSE: &str = "433";
/// 436: nickname collision.
pub const ERR_NICKCOLLISION: &str = "436";
/// 437: nick or channel is temporarily unavailable.
pub const ERR_UNAVAILRESOURCE: &str = "437";
/// 442: you're not on that channel.
pub const ERR_NOTONCHANNEL: &str = "442";
/// 451: you have not registered.
pub const ERR_NOTREGISTERED: &str = "451";
/// 461: not enough parameters.
pub const ERR_NEEDMOREPARAMS: &str = "461";
/// 462: you may not reregister.
pub const ERR_ALREADYREGISTERED: &str = "462";
/// 463: your host isn't among the privileged.
pub const ERR_NOPERMFORHOST: &str = "463";
/// 464: password incorrect.
pub const ERR_PASSWDMISMATCH: &str = "464";
/// 465: you are banned from this server.
pub const ERR_YOUREBANNEDCREEP: &str = "465";

// SASL.
/// 900: logged in as an account.
pub const RPL_LOGGEDIN: &str = "900";
/// 901: logged out.
pub const RPL_LOGGEDOUT: &str = "901";
/// 902: the nick is locked (account unavailable).
pub const ERR_NICKLOCKED: &str = "902";
/// 903: SASL authentication succeeded.
pub const RPL_SASLSUCCESS: &str = "903";
/// 904: SASL authentication failed.
pub const ERR_SASLFAIL: &str = "904";
/// 905: SASL message too long.
pub const ERR_SASLTOOLONG: &str = "905";
/// 906: SASL authentication aborted.
pub const ERR_SASLABORTED: &str = "906";
/// 907: already authenticated via SASL.
pub const ERR_SASLALREADY: &str = "907";
/// 908: available SASL mechanisms.
pub const RPL_SASLMECHS: &str = "908";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_are_three_digits() {
        for n in [
            RPL_WELCOME,
            RPL_ISUPPORT,
            RPL_UMODEIS,
            RPL_WHOREPLY,
            RPL_ENDOFNAMES,
            ERR_NOMOTD,
            ERR_YOUREBANNEDCREEP,
            RPL_SASLMECHS,
        ] {
            assert_eq!(n.len(), 3);
            assert!(n.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(RPL_ISUPPORT, "005");
        assert_eq!(ERR_INVALIDCAPCMD, "410");
        assert_eq!(ERR_SASLTOOLONG, "905");
    }
}
