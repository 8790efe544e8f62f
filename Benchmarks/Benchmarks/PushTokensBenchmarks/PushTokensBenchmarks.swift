import Benchmark
import PushTokens

/// One realistic input per provider (from the shared vectors), plus the worst case the library
/// promises to bound: 8 KiB of random bytes.
private let samples: [(provider: String, input: TokenInput)] = [
    ("apns", .text("6B596AB0 B60568EF 8A3B9BAA 0617DCD8 4E7F1631 38789841 EBFCD9D0 29DE6055")),
    ("fcm", .text("\"foqc11bmPvxhzGughXOKId:APA91bfsq16VztECtaeu60AP02JSrQG5XCg72Dytn5jWlq_WGcqznWqYToaNWt2knu7l2bjQDLGbxjzJTQiZRICdRkRmJM3W_nme2HaqdaI5bCvIRDY4AEV39JFmnvO9Awb-MzOOHCd8\"")),
    ("hms", .text("\nDPqu3Xl72CsCiq4AcArhIUcKYcUeMgmikXC3F_WwPk_lUXN4PzXVESKigkD3ZZvgMuY1AZXUfOI8ir8q3fcv2ndQsHbmmM2greoW4PEE9XrRkaHF0-yOSinM5DVIIMbdyjh_80OZqv5j  ")),
    ("chrome", .text(#"{"endpoint": "https://fcm.googleapis.com/fcm/send/67LkSmJLdIL:APA91btg7880IVIa5phDB2ath55dX7DV2OWfc-jTPAwmdpgeCFWE08Q2Epmk4Tsqg5R-oB8RH_-szvM0tby5DuErjhGIvElw3C-u6xAeJtfgFLrRlKc8Q4TZ00OQKVxLMJ6-nchLp63o", "expirationTime": null, "keys": {"p256dh": "BJfXWzWtjEC1UZy79YUY6xixphvsoG4ZDp5y5vYqaxndZNio8sqoFLlqiCxnFGdU-uF6UYTLw7Ay9-rcRn2z3cU", "auth": "DamkZBIffrMd-1HdsxvVOg"}}"#)),
    ("firefox", .json(.object([
        "endpoint": .string("https://updates.push.services.mozilla.com/wpush/v2/gLpmw0j1xrFi4X_zE97zhG2SRnruiKBtKghi6HGGHM47uZc3SN5VWUaA5eumNm6YKhLWnhtouTkD10UwbQ8U0pY2EvZ97CF6M7SMtSTVb1kr9ABB4bOHc-iuXKw0vWhlTmTWRFL-_YeGSnB7ouIx5PIlCWHBlCpbWw"),
        "expirationTime": .null,
        "keys": .object(["p256dh": .string("BM4JUxxFrHZ7_RS266JLHyyLzwD8_6TkQtE1ISYkdXz-46tORd2pH-pKTNTcNSIPoMc5zJVAUTJQNc3icfue_-M"), "auth": .string("Gnafzd5Rmb0FyKUdzvZGXg")]),
    ]))),
    ("safari", .json(.object([
        "deviceToken": .string("7A8865ADF782FBCF85FE41CB5EBDDE3D167FCACDCC0C1FDA9DFC9DE5786F9BAB"),
        "websitePushId": .string("web.com.example.news"),
    ]))),
    ("edge", .json(.object([
        "endpoint": .string("https://wns2-by3p.notify.windows.com/w/?token=BQYAAOUxnfv2qVy7K%2bei0DrnvINyLGE78dNbmZeYW46Cl5xhZC6VhvM%2blVIQV9ZxJVR992az1WDqhTnUs%2fZS6WmjYP343G5M0511Fm3wkK6dXruWc1ZC62dXMwxlXM%2fGlJp5OF8uOaazCFfTtQ3hnyXQxOh6x21BAn20iKg7LdxJ%2fgvwJolvsWdUmi%2fZfTcMGa5JaA43JyZa7Ns19eUOyC54eLKn1HjII2iQ3rAxHOUgIW0Ge7MXYA%3d%3d"),
        "expirationTime": .null,
        "keys": .object(["p256dh": .string("BJtSed4ELhocTcl_f9Ubs6ADVQVCXuUjJ0wlQGv_jJCtzpTN54hZK8wnN2yYKPkyCFhvQfBXS_nHeWB-NLo5Znk"), "auth": .string("OdCldPUEnW2WfX0CYBWLWA")]),
    ]))),
]

/// 8 KiB of deterministic pseudo-random bytes read as lossy UTF-8 (SplitMix64, fixed seed).
private func randomText(bytes count: Int, seed: UInt64) -> String {
    var state = seed
    var bytes: [UInt8] = []
    while bytes.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        withUnsafeBytes(of: (z ^ (z >> 31)).littleEndian) { bytes.append(contentsOf: $0) }
    }
    return String(decoding: bytes.prefix(count), as: UTF8.self)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 100,
        maxDuration: .seconds(2),
        maxIterations: 200_000
    )
    let registry = ProviderRegistry.builtIn

    for (provider, input) in samples {
        precondition((try? registry.normalize(provider: provider, input: input)) != nil, "sample for \(provider) must be valid")
        Benchmark("normalize \(provider)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try? registry.normalize(provider: provider, input: input))
            }
        }
    }

    Benchmark("tokenHash") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(pushTokenHash(namespace: "apns", key: "6b596ab0b60568ef8a3b9baa0617dcd84e7f163138789841ebfcd9d029de6055"))
        }
    }

    // The bound the library promises: arbitrary 8 KiB input is refused quickly, whatever the provider.
    let garbage = randomText(bytes: 8192, seed: 42)
    let asciiGarbage = String(repeating: "Zm9v", count: 2048)  // 8 KiB of base64-looking text
    for provider in ["apns", "fcm", "chrome", "safari"] {
        Benchmark("reject 8 KiB random bytes \(provider)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try? registry.normalize(provider: provider, input: .text(garbage)))
            }
        }
        Benchmark("reject 8 KiB base64-like text \(provider)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try? registry.normalize(provider: provider, input: .text(asciiGarbage)))
            }
        }
    }
}
