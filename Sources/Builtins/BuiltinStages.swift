import Pipeline
import Redis
import Sinks
import Sources
import Transforms

/// Every stage type this binary knows. Swift has no link-time registry: a stage is
/// available once it is listed here (or registered by a program that embeds the
/// gateway, see docs/writing-a-stage.md).
public let builtinStages: StageRegistry = {
    var registry: StageRegistry = [
        RedisListConfig.self,
        OTLPConfig.self,
        JSONDecodeConfig.self,
        ValidateConfig.self,
        SortLabelsConfig.self,
        RelabelConfig.self,
        StaticLabelsConfig.self,
        PrometheusSinkConfig.self,
        RemoteWriteConfig.self,
        RedisListSinkConfig.self,
    ]
    registry.deadLetters = RedisDeadLetters.self
    return registry
}()
