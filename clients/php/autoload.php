<?php
// Without Composer: require 'clients/php/autoload.php';
spl_autoload_register(static function (string $class): void {
    $prefix = 'PromStreamGateway\\';
    if (strncmp($class, $prefix, strlen($prefix)) === 0) {
        $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
